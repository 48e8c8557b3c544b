package kbsclient

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errHelp reports that help was printed.
var errHelp = errors.New("help requested")

// usageError is a command-line mistake; it is printed with a hint to --help.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// flagSpec describes one --long flag.
type flagSpec struct {
	name  string // without the leading "--"
	value string // value placeholder; "" for a switch
	help  string
}

// parsedArgs is the result of parsing one command level.
type parsedArgs struct {
	values      map[string]string
	switches    map[string]bool
	positionals []string
	rest        []string // arguments after the subcommand name (subcommand levels)
	help        bool
}

func (p *parsedArgs) has(name string) bool {
	_, ok := p.values[name]
	return ok || p.switches[name]
}

// parseArgs parses args against specs. Flags are "--name value" or
// "--name=value"; switches take no value. With subcommands set, parsing stops
// at the first positional (the subcommand name), whose following arguments
// are returned in rest; otherwise flags and positionals may interleave and
// "--" ends the flags. -h/--help sets help.
func parseArgs(args []string, specs []flagSpec, subcommands bool) (*parsedArgs, error) {
	p := &parsedArgs{values: map[string]string{}, switches: map[string]bool{}}
	byName := map[string]flagSpec{}
	for _, s := range specs {
		byName[s.name] = s
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help":
			p.help = true
			continue
		case a == "--" && !subcommands:
			p.positionals = append(p.positionals, args[i+1:]...)
			return p, nil
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, val, hasVal := strings.Cut(a[2:], "=")
			spec, ok := byName[name]
			if !ok {
				return nil, usagef("unexpected argument '--%s' found", name)
			}
			if p.has(name) {
				return nil, usagef("the argument '--%s' cannot be used multiple times", name)
			}
			if spec.value == "" {
				if hasVal {
					return nil, usagef("unexpected value '%s' for '--%s' found; no more were expected", val, name)
				}
				p.switches[name] = true
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, usagef("a value is required for '--%s <%s>' but none was supplied", name, spec.value)
				}
				i++
				val = args[i]
			}
			p.values[name] = val
		case strings.HasPrefix(a, "-") && len(a) > 1 && !isNumber(a):
			return nil, usagef("unexpected argument '%s' found", a)
		default:
			p.positionals = append(p.positionals, a)
			if subcommands {
				p.rest = args[i+1:]
				return p, nil
			}
		}
	}
	return p, nil
}

// isNumber reports whether a is a (negative) number, which is taken as a
// positional rather than a flag since no short flag is a digit.
func isNumber(a string) bool {
	_, err := strconv.ParseFloat(a, 64)
	return err == nil
}

// require returns the value of a required flag.
func (p *parsedArgs) require(name, placeholder string) (string, error) {
	v, ok := p.values[name]
	if !ok {
		return "", usagef("the following required arguments were not provided:\n  --%s <%s>", name, placeholder)
	}
	return v, nil
}

// rustDebugString quotes s the way Rust's {:?} formats a String.
func rustDebugString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u{%x}`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
