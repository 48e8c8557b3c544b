package kbsclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/client/kbstest"
	"github.com/sigil-attestation/sigil/internal/jose"
	sigilpolicy "github.com/sigil-attestation/sigil/policy"
)

const adminToken = "test-admin-token"

type env struct {
	t    *testing.T
	kbs  *kbstest.KBS
	srv  *httptest.Server
	dir  string
	vars map[string]string
}

func newEnv(t *testing.T, cfg kbstest.Config) *env {
	t.Helper()
	k := kbstest.New(cfg)
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	return &env{t: t, kbs: k, srv: srv, dir: t.TempDir(), vars: map[string]string{}}
}

func (e *env) file(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) run(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return e.vars[k] })
	return code, out.String(), errOut.String()
}

func (e *env) lastRequest() kbstest.Request {
	reqs := e.kbs.Requests()
	if len(reqs) == 0 {
		e.t.Fatal("no request reached the KBS")
	}
	return reqs[len(reqs)-1]
}

func TestAttestAndGetResource(t *testing.T) {
	e := newEnv(t, kbstest.Config{})
	e.kbs.SetResource("default/test/secret", []byte("shhhhhhh"))

	code, out, errOut := e.run("", "--url", e.srv.URL, "get-resource", "--path", "default/test/secret")
	if code != 0 || out != base64.StdEncoding.EncodeToString([]byte("shhhhhhh"))+"\n" {
		t.Fatalf("get-resource = %d, %q, %q", code, out, errOut)
	}
	if n := e.kbs.Counts(); n.Auth != 1 || n.ResourceGets != 2 {
		t.Errorf("counts = %+v", n)
	}

	// attest with a TEE key file and init-data, then get-resource with the token.
	key, err := jose.GenerateTeeKey(rand.Reader, "RSA-OAEP-256")
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := jose.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := e.file("tee.pem", string(pemKey))
	code, out, errOut = e.run("", "--url="+e.srv.URL, "attest", "algorithm = \"sha256\"\n", "--tee-key-file", keyFile)
	if code != 0 || strings.Count(out, ".") != 2 {
		t.Fatalf("attest = %d, %q, %q", code, out, errOut)
	}
	atts := e.kbs.Attestations()
	last := atts[len(atts)-1]
	if last.InitData == nil || last.InitData.Body != "algorithm = \"sha256\"\n" || last.RuntimeData.TeePubKey.Kty != "RSA" {
		t.Errorf("attestation = %+v", last)
	}
	if last.TeeEvidence.AdditionalEvidence != "" {
		t.Error("sample device used without ENABLE_SAMPLE_DEVICE")
	}
	tokenFile := e.file("token", out)
	before := e.kbs.Counts()
	code, out, errOut = e.run("", "--url", e.srv.URL, "get-resource", "--attestation-token", tokenFile, "--tee-key-file="+keyFile, "--path=default/test/secret")
	if code != 0 || out != base64.StdEncoding.EncodeToString([]byte("shhhhhhh"))+"\n" {
		t.Fatalf("get-resource with token = %d, %q, %q", code, out, errOut)
	}
	if after := e.kbs.Counts(); after.Auth != before.Auth {
		t.Error("token mode attested")
	}
	if got := e.lastRequest().Header.Get("Authorization"); got != "Bearer "+strings.TrimSpace(string(mustRead(t, tokenFile))) {
		t.Errorf("Authorization = %q", got)
	}

	// The sample device follows ENABLE_SAMPLE_DEVICE.
	e.vars["ENABLE_SAMPLE_DEVICE"] = "1"
	if code, _, errOut := e.run("", "--url", e.srv.URL, "attest"); code != 0 {
		t.Fatalf("attest with device: %s", errOut)
	}
	atts = e.kbs.Attestations()
	if !strings.Contains(atts[len(atts)-1].TeeEvidence.AdditionalEvidence, `"sampledevice"`) {
		t.Error("sample device not used with ENABLE_SAMPLE_DEVICE")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResourceErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     kbstest.Config
		deny    bool
		path    string
		wantErr string
	}{
		{"missing 404", kbstest.Config{}, false, "a/b/missing", "resource not found"},
		{"deny", kbstest.Config{}, true, "a/b/c", "request unauthorized"},
		{"trustee 401", kbstest.Config{MissingResourceStatus: 401}, false, "a/b/missing", "request unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			e.kbs.SetResource("a/b/c", []byte("x"))
			e.kbs.SetDenyAll(tt.deny)
			code, out, errOut := e.run("", "--url", e.srv.URL, "get-resource", "--path", tt.path)
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "Error: ") || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("= %d, %q, %q; want error %q", code, out, errOut, tt.wantErr)
			}
		})
	}
}

func TestConfigCommands(t *testing.T) {
	e := newEnv(t, kbstest.Config{AdminToken: adminToken})
	tokenFile := e.file("admin-token", "  "+adminToken+"\n")
	policyFile := e.file("policy.rego", "package policy\n")
	resourceFile := e.file("res.bin", "\x00secret\xff")
	url := e.srv.URL
	cfg := func(args ...string) []string {
		return append([]string{"--url", url, "config", "--admin-token-file", tokenFile}, args...)
	}
	b64 := base64.StdEncoding.EncodeToString

	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantOut string
		check   func(t *testing.T)
	}{
		{
			name:    "set-attestation-policy defaults",
			args:    cfg("set-attestation-policy", "--policy-file", policyFile),
			wantOut: "Set attestation policy success \n policy: " + b64([]byte("package policy\n")) + "\n",
			check: func(t *testing.T) {
				want := `{"type":"rego","policy_id":"default_cpu","policy":"cGFja2FnZSBwb2xpY3kK"}`
				if got := string(e.lastRequest().Body); got != want {
					t.Errorf("body = %s, want %s", got, want)
				}
			},
		},
		{
			name:    "set-attestation-policy id and type",
			args:    cfg("set-attestation-policy", "--id=default_gpu", "--type", "rego", "--policy-file="+policyFile),
			wantOut: "Set attestation policy success",
			check: func(t *testing.T) {
				if _, ok := e.kbs.AttestationPolicy("default_gpu"); !ok {
					t.Error("policy not stored under default_gpu")
				}
			},
		},
		{
			name: "set-attestation-policy from stdin", stdin: "from stdin",
			args:    cfg("set-attestation-policy", "--policy-file", "-", "--id", "stdin"),
			wantOut: "Set attestation policy success",
			check: func(t *testing.T) {
				if p, _ := e.kbs.AttestationPolicy("stdin"); string(p) != "from stdin" {
					t.Errorf("policy = %q", p)
				}
			},
		},
		{name: "set-resource-policy file", args: cfg("set-resource-policy", "--policy-file", policyFile), wantOut: "Set resource policy success \n policy: ",
			check: policyIs(e, "package policy\n")},
		{name: "set-resource-policy allow-all", args: cfg("set-resource-policy", "--allow-all"), check: policyIs(e, string(allowAllPolicy))},
		{name: "set-resource-policy deny-all", args: cfg("set-resource-policy", "--deny-all"), check: policyIs(e, string(denyAllPolicy))},
		{name: "set-resource-policy affirming", args: cfg("set-resource-policy", "--affirming"), check: policyIs(e, string(affirmingPolicy))},
		{name: "set-resource-policy trustee-default", args: cfg("set-resource-policy", "--trustee-default"), check: policyIs(e, sigilpolicy.ResourceTrusteeDefault)},
		{name: "set-resource-policy sigil-default", args: cfg("set-resource-policy", "--sigil-default"), check: policyIs(e, sigilpolicy.ResourceDefault)},
		{name: "set-resource-policy default is deny-all", args: cfg("set-resource-policy", "--default"), check: policyIs(e, string(denyAllPolicy))},
		{
			name:    "set-resource",
			args:    cfg("set-resource", "--resource-file", resourceFile, "--path", "one/two/three"),
			wantOut: "Set resource success \n resource: " + b64([]byte("\x00secret\xff")) + "\n",
			check: func(t *testing.T) {
				r := e.lastRequest()
				if r.Header.Get("Content-Type") != "application/octet-stream" || r.Header.Get("Authorization") != "Bearer "+adminToken {
					t.Errorf("headers = %v", r.Header)
				}
				if d, _ := e.kbs.Resource("one/two/three"); string(d) != "\x00secret\xff" {
					t.Errorf("stored %q", d)
				}
			},
		},
		{
			name:    "delete-resource",
			args:    cfg("delete-resource", "--path", "one/two/three"),
			wantOut: "Delete resource success",
			check: func(t *testing.T) {
				if _, ok := e.kbs.Resource("one/two/three"); ok {
					t.Error("not deleted")
				}
			},
		},
		{name: "sample rv string list", args: cfg("set-sample-reference-value", "svn", "1"), wantOut: "Reference Values Updated\n", check: rvIs(e, "svn", `["1"]`)},
		{name: "sample rv integer", args: cfg("set-sample-reference-value", "--as-integer", "major_version", "-1", "--as-single-value"), check: rvIs(e, "major_version", `-1`)},
		{name: "sample rv integer list", args: cfg("set-sample-reference-value", "minor", "4", "--as-integer"), check: rvIs(e, "minor", `[4]`)},
		{name: "sample rv bool", args: cfg("set-sample-reference-value", "debug", "false", "--as-bool", "--as-single-value"), check: rvIs(e, "debug", `false`)},
		{name: "sample rv after --", args: cfg("set-sample-reference-value", "--", "neg", "-5"), check: rvIs(e, "neg", `["-5"]`)},
		{name: "get-reference-value", args: cfg("get-reference-value", "--id", "svn"), wantOut: "\"[\\\"1\\\"]\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := e.run(tt.stdin, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.Contains(out, tt.wantOut) || (strings.HasSuffix(tt.wantOut, "\n") && !strings.HasPrefix(tt.wantOut, out[:min(len(out), len(tt.wantOut))])) {
				t.Errorf("stdout = %q, want %q", out, tt.wantOut)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

func policyIs(e *env, want string) func(t *testing.T) {
	return func(t *testing.T) {
		if got := string(e.kbs.ResourcePolicy()); got != want {
			t.Errorf("resource policy = %q, want %q", got, want)
		}
		var body struct{ Policy string }
		if err := json.Unmarshal(e.lastRequest().Body, &body); err != nil || body.Policy != base64.RawURLEncoding.EncodeToString([]byte(want)) {
			t.Errorf("request body = %s", e.lastRequest().Body)
		}
	}
}

func rvIs(e *env, name, want string) func(t *testing.T) {
	return func(t *testing.T) {
		if got, _ := e.kbs.ReferenceValue(name); string(got) != want {
			t.Errorf("reference value %s = %s, want %s", name, got, want)
		}
	}
}

func TestAdminTokenLookup(t *testing.T) {
	e := newEnv(t, kbstest.Config{AdminToken: adminToken})
	policyFile := e.file("p.rego", "p")
	home := filepath.Join(e.dir, "home")
	work := filepath.Join(e.dir, "work")
	os.MkdirAll(work, 0o755)
	t.Chdir(work)
	e.vars["HOME"] = home
	args := []string{"--url", e.srv.URL, "config", "set-resource-policy", "--policy-file", policyFile}

	// Nothing found → anonymous (rejected by this KBS, with a warning).
	code, _, errOut := e.run("", args...)
	if code != 1 || !strings.Contains(errOut, "anonymous") || !strings.Contains(errOut, "Failed to parse HTTP Auth Bearer header") {
		t.Fatalf("anonymous = %d, %q", code, errOut)
	}
	if h := e.lastRequest().Header.Get("Authorization"); h != "" {
		t.Errorf("anonymous request sent Authorization %q", h)
	}
	// $HOME/.trustee/admin-token.
	e.file("home/.trustee/admin-token", adminToken+"\n")
	if code, _, errOut := e.run("", args...); code != 0 {
		t.Fatalf("home token: %q", errOut)
	}
	// ./kbs/config/docker-compose/admin-token wins over $HOME.
	e.file("work/kbs/config/docker-compose/admin-token", "compose-token")
	code, _, errOut = e.run("", args...)
	if code != 1 || !strings.Contains(errOut, "Cannot verify token with any of the issuers") || !strings.Contains(errOut, `Request Failed, Response: "`) {
		t.Fatalf("compose token = %d, %q", code, errOut)
	}
	if h := e.lastRequest().Header.Get("Authorization"); h != "Bearer compose-token" {
		t.Errorf("Authorization = %q", h)
	}
	// --admin-token-file wins over both.
	flagFile := e.file("flag-token", adminToken)
	withFlag := []string{"--url", e.srv.URL, "config", "--admin-token-file", flagFile, "set-resource-policy", "--allow-all"}
	if code, _, errOut := e.run("", withFlag...); code != 0 {
		t.Fatalf("flag token: %q", errOut)
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t, kbstest.Config{})
	policy := e.file("p", "p")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantErr    string
		noRequests bool
	}{
		{name: "no args", args: nil, wantCode: 1, wantErr: "a subcommand is required"},
		{name: "top help", args: []string{"--help"}, wantOut: "Usage: kbs-client [OPTIONS] <COMMAND>"},
		{name: "top -h", args: []string{"-h"}, wantOut: "get-resource"},
		{name: "attest help", args: []string{"attest", "-h"}, wantOut: "--tee-key-file"},
		{name: "get-resource help", args: []string{"get-resource", "--help"}, wantOut: "--attestation-token"},
		{name: "get-resource no args", args: []string{"get-resource"}, wantCode: 1, wantErr: "--path <PATH>"},
		{name: "config help", args: []string{"config", "--help"}, wantOut: "set-sample-reference-value"},
		{name: "config no subcommand", args: []string{"config"}, wantCode: 1, wantErr: "a subcommand is required"},
		{name: "config sub help", args: []string{"config", "set-resource-policy", "-h"}, wantOut: "Same as --deny-all"},
		{name: "sample rv help", args: []string{"config", "set-sample-reference-value", "--help"}, wantOut: "<NAME>"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 1, wantErr: "unrecognized subcommand 'frobnicate'"},
		{name: "unknown config command", args: []string{"config", "get-reference-values"}, wantCode: 1, wantErr: "unrecognized subcommand"},
		{name: "unknown flag", args: []string{"attest", "--bogus"}, wantCode: 1, wantErr: "unexpected argument '--bogus'"},
		{name: "global flag after command", args: []string{"attest", "--url", "http://x"}, wantCode: 1, wantErr: "unexpected argument '--url'"},
		{name: "missing value", args: []string{"get-resource", "--path"}, wantCode: 1, wantErr: "a value is required for '--path <PATH>'"},
		{name: "repeated flag", args: []string{"get-resource", "--path", "a", "--path=b"}, wantCode: 1, wantErr: "cannot be used multiple times"},
		{name: "switch with value", args: []string{"config", "set-resource-policy", "--allow-all=yes"}, wantCode: 1, wantErr: "unexpected value"},
		{name: "two init-data", args: []string{"attest", "a", "b"}, wantCode: 1, wantErr: "unexpected argument 'b'"},
		{name: "token without key", args: []string{"--url", e.srv.URL, "get-resource", "--path", "a/b/c", "--attestation-token", policy},
			wantCode: 1, wantErr: "`--tee-key-file` must also be set", noRequests: true},
		{name: "no policy choice", args: []string{"config", "set-resource-policy"}, wantCode: 1, wantErr: "one of --policy-file"},
		{name: "two policy choices", args: []string{"config", "set-resource-policy", "--allow-all", "--deny-all"}, wantCode: 1, wantErr: "cannot be used with"},
		{name: "policy file and switch", args: []string{"config", "set-resource-policy", "--policy-file", policy, "--default"}, wantCode: 1, wantErr: "cannot be used with"},
		{name: "attestation policy without file", args: []string{"config", "set-attestation-policy", "--id", "x"}, wantCode: 1, wantErr: "--policy-file <POLICY_FILE>"},
		{name: "set-resource without file", args: []string{"config", "set-resource", "--path", "a/b/c"}, wantCode: 1, wantErr: "--resource-file"},
		{name: "set-resource without path", args: []string{"config", "set-resource", "--resource-file", policy}, wantCode: 1, wantErr: "--path"},
		{name: "delete-resource without path", args: []string{"config", "delete-resource"}, wantCode: 1, wantErr: "--path"},
		{name: "get-reference-value without id", args: []string{"config", "get-reference-value"}, wantCode: 1, wantErr: "--id"},
		{name: "sample rv missing value", args: []string{"config", "set-sample-reference-value", "name"}, wantCode: 1, wantErr: "<VALUE>"},
		{name: "sample rv extra", args: []string{"config", "set-sample-reference-value", "a", "b", "c"}, wantCode: 1, wantErr: "unexpected argument 'c'"},
		{name: "sample rv bad int", args: []string{"config", "set-sample-reference-value", "a", "x", "--as-integer"}, wantCode: 1, wantErr: "invalid integer"},
		{name: "sample rv int overflow", args: []string{"config", "set-sample-reference-value", "a", "4294967296", "--as-integer"}, wantCode: 1, wantErr: "invalid integer"},
		{name: "sample rv bad bool", args: []string{"config", "set-sample-reference-value", "a", "yes", "--as-bool"}, wantCode: 1, wantErr: "invalid bool"},
		{name: "sample rv int and bool", args: []string{"config", "set-sample-reference-value", "a", "1", "--as-bool", "--as-integer"}, wantCode: 1, wantErr: "cannot be used with"},
		{name: "stray positional", args: []string{"config", "delete-resource", "--path", "a/b/c", "extra"}, wantCode: 1, wantErr: "unexpected argument 'extra'"},
		{name: "missing cert file", args: []string{"--cert-file", filepath.Join(e.dir, "nope.pem"), "attest"}, wantCode: 1, wantErr: "failed to read"},
		{name: "bad cert file", args: []string{"--url", e.srv.URL, "--cert-file", policy, "attest"}, wantCode: 1, wantErr: "CertPEM", noRequests: true},
		{name: "bad tee key", args: []string{"--url", e.srv.URL, "attest", "--tee-key-file", policy}, wantCode: 1, wantErr: "TEE key", noRequests: true},
		{name: "bad url", args: []string{"--url", "127.0.0.1:1", "attest"}, wantCode: 1, wantErr: "invalid KBS URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.kbs.Requests())
			code, out, errOut := e.run("", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantErr)
			}
			if tt.wantCode != 0 && out != "" {
				t.Errorf("failure printed to stdout: %q", out)
			}
			if tt.noRequests && len(e.kbs.Requests()) != before {
				t.Error("a request reached the KBS")
			}
		})
	}
}

func TestDefaultURL(t *testing.T) {
	// Nothing listens on the default URL in tests; the error must name it.
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := Main(ctx, []string{"config", "--admin-token-file", os.DevNull, "delete-resource", "--path", "a/b/c"}, nil, &out, &errOut, nil)
	if code != 1 || !strings.Contains(errOut.String(), "127.0.0.1:8080") {
		t.Fatalf("= %d, %q", code, errOut.String())
	}
}

func TestHTTPSCertFile(t *testing.T) {
	k := kbstest.New(kbstest.Config{})
	k.SetResource("a/b/c", []byte("tls secret"))
	srv := httptest.NewTLSServer(k)
	defer srv.Close()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "ca.pem")
	var pemBuf bytes.Buffer
	pemBuf.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := base64.StdEncoding.EncodeToString(srv.Certificate().Raw)
	for len(enc) > 64 {
		pemBuf.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	pemBuf.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	os.WriteFile(certFile, pemBuf.Bytes(), 0o600)
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"--url", srv.URL, "--cert-file", certFile, "get-resource", "--path", "a/b/c"}, nil, &out, &errOut, nil)
	if code != 0 || out.String() != base64.StdEncoding.EncodeToString([]byte("tls secret"))+"\n" {
		t.Fatalf("= %d, %q, %q", code, out.String(), errOut.String())
	}
}

func TestRustDebugString(t *testing.T) {
	tests := map[string]string{
		`["1"]`:      `"[\"1\"]"`,
		"a\\b\n\t\r": `"a\\b\n\t\r"`,
		"é\x01'":     "\"é\\u{1}'\"",
		"":           `""`,
	}
	for in, want := range tests {
		if got := rustDebugString(in); got != want {
			t.Errorf("rustDebugString(%q) = %s, want %s", in, got, want)
		}
	}
}

var _ = client.DefaultPolicyID
