package kbsclient

import (
	"strings"
	"testing"
)

func FuzzParseArgs(f *testing.F) {
	f.Add("--path a/b/c --tee-key-file=k x")
	f.Add("--allow-all -- --x")
	f.Add("-h --path")
	f.Add("--path= -1 --allow-all=")
	specs := []flagSpec{{"path", "PATH", ""}, {"tee-key-file", "F", ""}, {"allow-all", "", ""}}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		for _, sub := range []bool{false, true} {
			p, err := parseArgs(args, specs, sub)
			if err != nil {
				continue
			}
			for name := range p.values {
				if name != "path" && name != "tee-key-file" {
					t.Fatalf("unknown value flag %q accepted", name)
				}
			}
			for name := range p.switches {
				if name != "allow-all" {
					t.Fatalf("unknown switch %q accepted", name)
				}
			}
			if sub && len(p.positionals) > 1 {
				t.Fatalf("subcommand parsing kept %d positionals", len(p.positionals))
			}
		}
	})
}
