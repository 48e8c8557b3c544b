package evaluate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	dir := t.TempDir()
	rd := bytes.Repeat([]byte{0xab}, 48)
	ev := write(t, dir, "ev.json", `{"svn":"1","report_data":"`+base64.StdEncoding.EncodeToString(rd)+`"}`)
	rv := write(t, dir, "rv.json", `{"svn":["1"],"launch_digest":["abcde"],"major_version":1,"minimum_minor_version":1}`)
	pol := write(t, dir, "p.rego", "package policy\nimport rego.v1\ndefault hardware := 97\nhardware := 2 if input.sample.svn == \"1\"\ntrust_claims := {\"hardware\": hardware}\n")
	hexRD := hex.EncodeToString(rd)
	cases := []struct {
		name   string
		args   []string
		code   int
		status string
		stderr string
	}{
		{"default policy, no reference values", []string{"--tee", "sample", "--evidence", ev, "--runtime-data-raw", hexRD}, 0, "contraindicated", ""},
		{"reference values", []string{"--tee", "sample", "--evidence", ev, "--runtime-data-raw", hexRD, "--reference-values", rv}, 0, "affirming", ""},
		{"own policy", []string{"--tee", "sample", "--evidence", ev, "--runtime-data-raw", hexRD, "--policy", pol}, 0, "affirming", ""},
		{"not bound", []string{"--tee", "sample", "--evidence", ev, "--runtime-data-raw", "00"}, 1, "", "report data mismatch"},
		{"unknown tee", []string{"--tee", "nope", "--evidence", ev}, 2, "", "unknown tee"},
		{"missing evidence flag", []string{"--tee", "sample"}, 2, "", "required"},
		{"bad hex", []string{"--tee", "sample", "--evidence", ev, "--runtime-data-raw", "zz"}, 2, "", "runtime-data-raw"},
		{"bad now", []string{"--tee", "sample", "--evidence", ev, "--now", "yesterday"}, 2, "", "--now"},
		{"missing file", []string{"--tee", "sample", "--evidence", filepath.Join(dir, "nope")}, 2, "", "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), c.args, &out, &errb, func(string) string { return "" })
			if code != c.code || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("exit %d (want %d), stderr %q", code, c.code, errb.String())
			}
			if c.code != 0 {
				return
			}
			var o struct {
				Submods []struct {
					Name        string                     `json:"name"`
					Status      string                     `json:"status"`
					Input       map[string]any             `json:"input"`
					TrustVector map[string]int             `json:"trust_vector"`
					Explanation map[string]json.RawMessage `json:"explanation"`
				} `json:"submods"`
			}
			if err := json.Unmarshal(out.Bytes(), &o); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			s := o.Submods[0]
			if s.Name != "cpu0" || s.Status != c.status || s.Input["sample"] == nil || len(s.TrustVector) == 0 || len(s.Explanation) == 0 {
				t.Fatalf("output %s", out.String())
			}
		})
	}
}
