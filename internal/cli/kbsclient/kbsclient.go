// Package kbsclient implements Sigil's kbs-client command line, compatible
// with Trustee's kbs-client: attestation, resource retrieval (with the
// session cookie or an attestation token) and the KBS admin commands.
package kbsclient

import (
	"context"
	"crypto"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/internal/jose"
	sigilpolicy "github.com/sigil-attestation/sigil/policy"
)

// Built-in resource policies.
var (
	//go:embed policies/allow_all.rego
	allowAllPolicy []byte
	//go:embed policies/deny_all.rego
	denyAllPolicy []byte
	//go:embed policies/affirming.rego
	affirmingPolicy []byte
)

// DefaultURL is the KBS URL used without --url.
const DefaultURL = "http://127.0.0.1:8080"

// Admin token locations tried, in order, when --admin-token-file is absent.
const (
	composeAdminTokenFile = "kbs/config/docker-compose/admin-token" // relative to the working directory
	homeAdminTokenFile    = ".trustee/admin-token"                  // relative to $HOME
)

// Main runs the command line. args excludes the program name. It returns
// the exit status: 0 on success (and for help), 1 on any error, which is
// printed to stderr.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	r := &runner{
		ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	err := r.run(args)
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "error: %s\n\nFor more information, try '--help'.\n", uerr.msg)
	default:
		fmt.Fprintf(stderr, "Error: %v\n", err)
	}
	return 1
}

type runner struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger

	url     string
	certPEM []byte
}

var globalFlags = []flagSpec{
	{"url", "URL", "The KBS server root URL [default: " + DefaultURL + "]"},
	{"cert-file", "CERT_FILE", "The KBS HTTPS server custom root certificate file path (PEM format)"},
}

var topCommands = [][2]string{
	{"config", "Set and configure the KBS (admin)"},
	{"get-resource", "Get a confidential resource"},
	{"attest", "Attest and print the attestation results token"},
}

func (r *runner) run(args []string) error {
	p, err := parseArgs(args, globalFlags, true)
	if err != nil {
		return err
	}
	if p.help {
		r.printHelp(r.stdout, "kbs-client [OPTIONS] <COMMAND>", "A command line client tool for KBS APIs.", nil, globalFlags, topCommands)
		return errHelp
	}
	if len(p.positionals) == 0 {
		r.printHelp(r.stderr, "kbs-client [OPTIONS] <COMMAND>", "A command line client tool for KBS APIs.", nil, globalFlags, topCommands)
		return usagef("a subcommand is required")
	}
	r.url = DefaultURL
	if v, ok := p.values["url"]; ok {
		r.url = v
	}
	if f, ok := p.values["cert-file"]; ok {
		if r.certPEM, err = r.readFile(f); err != nil {
			return err
		}
	}
	switch cmd := p.positionals[0]; cmd {
	case "attest":
		return r.attest(p.rest)
	case "get-resource":
		return r.getResource(p.rest)
	case "config":
		return r.config(p.rest)
	default:
		return usagef("unrecognized subcommand '%s'", cmd)
	}
}

// printHelp writes a help screen.
func (r *runner) printHelp(w io.Writer, usage, about string, args [][2]string, flags []flagSpec, cmds [][2]string) {
	fmt.Fprintf(w, "%s\n\nUsage: %s\n", about, usage)
	if len(cmds) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, c := range cmds {
			fmt.Fprintf(w, "  %-28s %s\n", c[0], c[1])
		}
	}
	if len(args) > 0 {
		fmt.Fprintf(w, "\nArguments:\n")
		for _, a := range args {
			fmt.Fprintf(w, "  %-28s %s\n", a[0], a[1])
		}
	}
	fmt.Fprintf(w, "\nOptions:\n")
	for _, f := range flags {
		name := "--" + f.name
		if f.value != "" {
			name += " <" + f.value + ">"
		}
		fmt.Fprintf(w, "  %-28s %s\n", name, f.help)
	}
	fmt.Fprintf(w, "  %-28s %s\n", "-h, --help", "Print help")
}

// readFile reads a file named on the command line; "-" is standard input.
func (r *runner) readFile(name string) ([]byte, error) {
	if name == "-" {
		if r.stdin == nil {
			return nil, errors.New("standard input is not available")
		}
		return io.ReadAll(r.stdin)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", name, err)
	}
	return data, nil
}

func (r *runner) options() client.Options {
	return client.Options{CertPEM: r.certPEM, Logger: r.log}
}

func (r *runner) teeKey(p *parsedArgs) (crypto.PrivateKey, error) {
	f, ok := p.values["tee-key-file"]
	if !ok {
		return nil, nil
	}
	data, err := r.readFile(f)
	if err != nil {
		return nil, err
	}
	key, err := jose.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("TEE key %s: %w", f, err)
	}
	return key, nil
}

// evidenceProvider returns the attester: the sample TEE, with the sample
// device when ENABLE_SAMPLE_DEVICE is set (non-empty).
func (r *runner) evidenceProvider() client.EvidenceProvider {
	return sample.New(r.getenv("ENABLE_SAMPLE_DEVICE") != "")
}

// initData returns the optional INIT_DATA positional.
func initData(p *parsedArgs) ([]byte, error) {
	switch len(p.positionals) {
	case 0:
		return nil, nil
	case 1:
		return []byte(p.positionals[0]), nil
	}
	return nil, usagef("unexpected argument '%s' found", p.positionals[1])
}

var teeKeyFlag = flagSpec{"tee-key-file", "TEE_KEY_FILE",
	"TEE private key file (PEM: RSA PKCS#1, or EC P-256/P-521 PKCS#8); a new EC P-256 key is generated if absent"}

var initDataArg = [2]string{"[INIT_DATA]", "Init-data plaintext (TOML) sent with the attestation"}

func (r *runner) attest(args []string) error {
	flags := []flagSpec{teeKeyFlag}
	p, err := parseArgs(args, flags, false)
	if err != nil {
		return err
	}
	if p.help {
		r.printHelp(r.stdout, "kbs-client attest [OPTIONS] [INIT_DATA]", "Attest and print the attestation results token",
			[][2]string{initDataArg}, flags, nil)
		return errHelp
	}
	id, err := initData(p)
	if err != nil {
		return err
	}
	key, err := r.teeKey(p)
	if err != nil {
		return err
	}
	opts := r.options()
	opts.TeeKey, opts.InitData = key, id
	c, err := client.NewRCAR(r.url, r.evidenceProvider(), opts)
	if err != nil {
		return err
	}
	token, err := c.Attest(r.ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, token)
	return nil
}

func (r *runner) getResource(args []string) error {
	flags := []flagSpec{
		{"path", "PATH", "KBS resource path, e.g. my_repo/resource_type/123abc"},
		teeKeyFlag,
		{"attestation-token", "ATTESTATION_TOKEN", "Attestation token file; requires --tee-key-file whose public key is the token's tee-pubkey"},
	}
	p, err := parseArgs(args, flags, false)
	if err != nil {
		return err
	}
	if p.help || len(args) == 0 {
		w := r.stdout
		if !p.help {
			w = r.stderr
		}
		r.printHelp(w, "kbs-client get-resource [OPTIONS] --path <PATH> [INIT_DATA]", "Get a confidential resource (printed as standard base64)",
			[][2]string{initDataArg}, flags, nil)
		if p.help {
			return errHelp
		}
		return usagef("the following required arguments were not provided:\n  --path <PATH>")
	}
	path, err := p.require("path", "PATH")
	if err != nil {
		return err
	}
	id, err := initData(p)
	if err != nil {
		return err
	}
	key, err := r.teeKey(p)
	if err != nil {
		return err
	}
	var data []byte
	if tf, ok := p.values["attestation-token"]; ok {
		if key == nil {
			return errors.New("if `--attestation-token` is set, `--tee-key-file` must also be set, and the public part of the TEE key must be the tee-pubkey in the token")
		}
		raw, err := r.readFile(tf)
		if err != nil {
			return err
		}
		tc, err := client.NewTokenClient(r.url, strings.TrimSpace(string(raw)), key, r.options())
		if err != nil {
			return err
		}
		if data, err = tc.GetResource(r.ctx, path); err != nil {
			return err
		}
	} else {
		opts := r.options()
		opts.TeeKey, opts.InitData = key, id
		c, err := client.NewRCAR(r.url, r.evidenceProvider(), opts)
		if err != nil {
			return err
		}
		if data, err = c.GetResource(r.ctx, path); err != nil {
			return err
		}
	}
	fmt.Fprintln(r.stdout, base64.StdEncoding.EncodeToString(data))
	return nil
}

var configCommands = [][2]string{
	{"set-attestation-policy", "Set an attestation verification policy"},
	{"set-resource-policy", "Set the resource policy"},
	{"set-resource", "Set a confidential resource"},
	{"delete-resource", "Delete a confidential resource"},
	{"get-reference-value", "Get a reference value registered with the RVPS"},
	{"set-sample-reference-value", "Add a sample reference value to the RVPS (through the KBS)"},
}

func (r *runner) config(args []string) error {
	flags := []flagSpec{{"admin-token-file", "ADMIN_TOKEN_FILE",
		"Admin bearer token file [default: ./" + composeAdminTokenFile + ", then $HOME/" + homeAdminTokenFile + ", else anonymous]"}}
	p, err := parseArgs(args, flags, true)
	if err != nil {
		return err
	}
	usage := "kbs-client config [OPTIONS] <COMMAND>"
	about := "Set and configure the KBS (admin)"
	if p.help {
		r.printHelp(r.stdout, usage, about, nil, flags, configCommands)
		return errHelp
	}
	if len(p.positionals) == 0 {
		r.printHelp(r.stderr, usage, about, nil, flags, configCommands)
		return usagef("a subcommand is required")
	}
	cmd, rest := p.positionals[0], p.rest
	var known bool
	for _, c := range configCommands {
		known = known || c[0] == cmd
	}
	if !known {
		return usagef("unrecognized subcommand '%s'", cmd)
	}
	// Parse the subcommand's arguments before resolving the admin token so
	// that help and usage errors need no token.
	sub, err := r.configSubcommand(cmd, rest)
	if err != nil || sub == nil {
		return err
	}
	token, err := r.adminToken(p.values["admin-token-file"])
	if err != nil {
		return err
	}
	if token == "" {
		r.log.Warn("No admin token provided; sending anonymous request")
	}
	admin, err := client.NewAdmin(r.url, token, r.options())
	if err != nil {
		return err
	}
	return sub(admin)
}

// adminToken resolves the admin token: the named file, else the
// docker-compose file, else $HOME/.trustee/admin-token, else "" (anonymous).
func (r *runner) adminToken(file string) (string, error) {
	if file != "" {
		data, err := r.readFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(data)), nil
	}
	candidates := []string{composeAdminTokenFile}
	if home := r.getenv("HOME"); home != "" {
		candidates = append(candidates, filepath.Join(home, homeAdminTokenFile))
	}
	for _, c := range candidates {
		data, err := os.ReadFile(c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("failed to read %s: %w", c, err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	return "", nil
}

// configSubcommand parses a config subcommand and returns the action to run
// with the admin client; nil action and nil error after printing help.
func (r *runner) configSubcommand(cmd string, args []string) (func(*client.Admin) error, error) {
	var (
		flags []flagSpec
		usage string
		about string
		pos   [][2]string
	)
	switch cmd {
	case "set-attestation-policy":
		flags = []flagSpec{
			{"type", "TYPE", "Policy format type [default: " + client.DefaultPolicyType + "]"},
			{"id", "ID", "Policy ID [default: " + client.DefaultPolicyID + "]"},
			{"policy-file", "POLICY_FILE", "Policy file path (\"-\" for standard input)"},
		}
		usage, about = "kbs-client config set-attestation-policy [OPTIONS] --policy-file <POLICY_FILE>", "Set an attestation verification policy"
	case "set-resource-policy":
		flags = []flagSpec{
			{"policy-file", "POLICY_FILE", "Policy file path (\"-\" for standard input)"},
			{"allow-all", "", "Use the built-in policy that releases every resource"},
			{"deny-all", "", "Use the built-in policy that releases nothing"},
			{"affirming", "", "Use the built-in policy that releases resources only when every submodule of the token is affirming"},
			{"default", "", "Same as --deny-all (as in Trustee's kbs-client, which sends its deny-all policy here)"},
			{"trustee-default", "", "Use Trustee's KBS default policy: release to any TEE but sample, whatever its appraisal status (less strict than Sigil's default)"},
			{"sigil-default", "", "Use Sigil's KBS default policy: release only to a hardware TEE whose every submodule is affirming"},
		}
		usage, about = "kbs-client config set-resource-policy <--policy-file <POLICY_FILE>|--allow-all|--deny-all|--affirming|--default|--trustee-default|--sigil-default>", "Set the resource policy"
	case "set-resource":
		flags = []flagSpec{
			{"path", "PATH", "KBS resource path, e.g. my_repo/resource_type/123abc"},
			{"resource-file", "RESOURCE_FILE", "Resource file path (\"-\" for standard input)"},
		}
		usage, about = "kbs-client config set-resource --path <PATH> --resource-file <RESOURCE_FILE>", "Set a confidential resource"
	case "delete-resource":
		flags = []flagSpec{{"path", "PATH", "KBS resource path, e.g. my_repo/resource_type/123abc"}}
		usage, about = "kbs-client config delete-resource --path <PATH>", "Delete a confidential resource"
	case "get-reference-value":
		flags = []flagSpec{{"id", "ID", "Reference value id"}}
		usage, about = "kbs-client config get-reference-value --id <ID>", "Get a reference value registered with the RVPS"
	case "set-sample-reference-value":
		flags = []flagSpec{
			{"as-integer", "", "Parse VALUE as a 32-bit integer"},
			{"as-bool", "", "Parse VALUE as a bool (true or false)"},
			{"as-single-value", "", "Register VALUE itself instead of a one-element list"},
		}
		pos = [][2]string{{"<NAME>", "The name of the reference value"}, {"<VALUE>", "The reference value (a string unless --as-integer or --as-bool)"}}
		usage, about = "kbs-client config set-sample-reference-value [OPTIONS] <NAME> <VALUE>",
			"Add a sample reference value to the RVPS through the KBS (the RVPS must enable the sample extractor)"
	}
	p, err := parseArgs(args, flags, false)
	if err != nil {
		return nil, err
	}
	if p.help {
		r.printHelp(r.stdout, usage, about, pos, flags, nil)
		return nil, errHelp
	}
	if cmd != "set-sample-reference-value" && len(p.positionals) > 0 {
		return nil, usagef("unexpected argument '%s' found", p.positionals[0])
	}
	switch cmd {
	case "set-attestation-policy":
		file, err := p.require("policy-file", "POLICY_FILE")
		if err != nil {
			return nil, err
		}
		return func(a *client.Admin) error {
			policy, err := r.readFile(file)
			if err != nil {
				return err
			}
			if err := a.SetAttestationPolicy(r.ctx, p.values["id"], p.values["type"], policy); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "Set attestation policy success \n policy: %s\n", base64.StdEncoding.EncodeToString(policy))
			return nil
		}, nil
	case "set-resource-policy":
		var chosen []string
		for _, f := range flags {
			if p.has(f.name) {
				chosen = append(chosen, "--"+f.name)
			}
		}
		if len(chosen) != 1 {
			if len(chosen) == 0 {
				return nil, usagef("one of --policy-file, --allow-all, --deny-all, --affirming, --default, --trustee-default or --sigil-default is required")
			}
			return nil, usagef("the argument '%s' cannot be used with '%s'", chosen[0], chosen[1])
		}
		return func(a *client.Admin) error {
			var policy []byte
			switch chosen[0] {
			case "--policy-file":
				var err error
				if policy, err = r.readFile(p.values["policy-file"]); err != nil {
					return err
				}
			case "--allow-all":
				policy = allowAllPolicy
			case "--affirming":
				policy = affirmingPolicy
			case "--trustee-default":
				policy = []byte(sigilpolicy.ResourceTrusteeDefault)
			case "--sigil-default":
				policy = []byte(sigilpolicy.ResourceDefault)
			default: // --deny-all, --default
				policy = denyAllPolicy
			}
			if err := a.SetResourcePolicy(r.ctx, policy); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "Set resource policy success \n policy: %s\n", base64.StdEncoding.EncodeToString(policy))
			return nil
		}, nil
	case "set-resource":
		path, err := p.require("path", "PATH")
		if err != nil {
			return nil, err
		}
		file, err := p.require("resource-file", "RESOURCE_FILE")
		if err != nil {
			return nil, err
		}
		return func(a *client.Admin) error {
			data, err := r.readFile(file)
			if err != nil {
				return err
			}
			if err := a.SetResource(r.ctx, path, data); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "Set resource success \n resource: %s\n", base64.StdEncoding.EncodeToString(data))
			return nil
		}, nil
	case "delete-resource":
		path, err := p.require("path", "PATH")
		if err != nil {
			return nil, err
		}
		return func(a *client.Admin) error {
			if err := a.DeleteResource(r.ctx, path); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "Delete resource success \n path: %s\n", path)
			return nil
		}, nil
	case "get-reference-value":
		id, err := p.require("id", "ID")
		if err != nil {
			return nil, err
		}
		return func(a *client.Admin) error {
			v, err := a.GetReferenceValue(r.ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintln(r.stdout, rustDebugString(string(v)))
			return nil
		}, nil
	default: // set-sample-reference-value
		if len(p.positionals) < 2 {
			missing := []string{"<NAME>", "<VALUE>"}[len(p.positionals):]
			return nil, usagef("the following required arguments were not provided:\n  %s", strings.Join(missing, "\n  "))
		}
		if len(p.positionals) > 2 {
			return nil, usagef("unexpected argument '%s' found", p.positionals[2])
		}
		if p.switches["as-integer"] && p.switches["as-bool"] {
			return nil, usagef("the argument '--as-integer' cannot be used with '--as-bool'")
		}
		name, raw := p.positionals[0], p.positionals[1]
		var value any = raw
		switch {
		case p.switches["as-integer"]:
			n, err := strconv.ParseInt(raw, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("invalid integer %q: %w", raw, err)
			}
			value = n
		case p.switches["as-bool"]:
			switch raw {
			case "true":
				value = true
			case "false":
				value = false
			default:
				return nil, fmt.Errorf("invalid bool %q: provided string was not `true` or `false`", raw)
			}
		}
		if !p.switches["as-single-value"] {
			value = []any{value}
		}
		return func(a *client.Admin) error {
			if err := a.SetSampleReferenceValue(r.ctx, name, value); err != nil {
				return err
			}
			fmt.Fprintln(r.stdout, "Reference Values Updated")
			return nil
		}, nil
	}
}
