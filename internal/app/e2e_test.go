package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/policy"
)

const secretPath = "default/test/secret"

const contraindicatedCPU = `package policy
default executables := 33
default hardware := 97
default configuration := 36
trust_claims := {"executables": executables, "hardware": hardware, "configuration": configuration}
`

const cpuNotContraindicated = `package policy
import rego.v1
default allow := false
allow if input.submods.cpu0["ear.status"] != "contraindicated"
`

const cpuAndGPUNotContraindicated = `package policy
import rego.v1
default allow := false
allow if {
	input.submods.cpu0["ear.status"] != "contraindicated"
	input.submods.gpu0["ear.status"] != "contraindicated"
}
`

const deviceSVNPolicy = `package policy
import rego.v1
default hardware := 97
hardware := 2 if input.sampledevice.svn in query_reference_value("device_svn")
trust_claims := {"hardware": hardware}
`

func newAdmin(t *testing.T, k *testKBS, token string) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(k.URL, token, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func guest(t *testing.T, k *testKBS, withDevice bool, initData []byte) *client.RCAR {
	t.Helper()
	c, err := client.NewRCAR(k.URL, sample.New(withDevice), client.Options{InitData: initData})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGetResource reproduces Trustee's integration-test get_resource
// scenarios 1–6 through the Go client against a real server.
func TestGetResource(t *testing.T) {
	ctx := context.Background()
	type step func(t *testing.T, a *client.Admin)
	setPolicy := func(text string) step {
		return func(t *testing.T, a *client.Admin) {
			if err := a.SetResourcePolicy(ctx, []byte(text)); err != nil {
				t.Fatal(err)
			}
		}
	}
	setAS := func(id, text string) step {
		return func(t *testing.T, a *client.Admin) {
			if err := a.SetAttestationPolicy(ctx, id, "rego", []byte(text)); err != nil {
				t.Fatal(err)
			}
		}
	}
	setRV := func(name string, v any) step {
		return func(t *testing.T, a *client.Admin) {
			if err := a.SetSampleReferenceValue(ctx, name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	sampleRVs := []step{setRV("svn", []string{"1"}), setRV("launch_digest", []string{"abcde"}),
		setRV("major_version", 1), setRV("minimum_minor_version", 1)}
	cases := []struct {
		name   string
		device bool
		steps  []step
		ok     bool
	}{
		{"1 allow-all with contraindicated cpu", false, []step{setPolicy(policy.ResourceAllowAll), setAS("default_cpu", contraindicatedCPU)}, true},
		{"2 deny-all", false, []step{setPolicy(policy.ResourceDenyAll)}, false},
		{"3 not contraindicated without reference values", false, []step{setPolicy(cpuNotContraindicated)}, false},
		{"4 not contraindicated with reference values", false, append([]step{setPolicy(cpuNotContraindicated)}, sampleRVs...), true},
		{"5 device without reference value", true, append([]step{setPolicy(cpuAndGPUNotContraindicated), setAS("default_gpu", deviceSVNPolicy)}, sampleRVs...), false},
		{"6 device with reference value", true, append([]step{setPolicy(cpuAndGPUNotContraindicated), setAS("default_gpu", deviceSVNPolicy), setRV("device_svn", []string{"2"})}, sampleRVs...), true},
		{"6b device with Sigil's default_gpu", true, append([]step{setPolicy(cpuAndGPUNotContraindicated), setRV("device_svn", []string{"2"})}, sampleRVs...), true},
		{"default policy denies sample", false, sampleRVs, false},
		{"affirming policy", false, append([]step{setPolicy(policy.ResourceAffirming)}, sampleRVs...), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := startKBS(t, kbsOpts{})
			a := newAdmin(t, k, k.token(t))
			if err := a.SetResource(ctx, secretPath, []byte("shhhhhhh")); err != nil {
				t.Fatal(err)
			}
			for _, s := range c.steps {
				s(t, a)
			}
			got, err := guest(t, k, c.device, nil).GetResource(ctx, secretPath)
			if c.ok {
				if err != nil || string(got) != "shhhhhhh" {
					t.Fatalf("got %q, %v; want the secret", got, err)
				}
				return
			}
			if !errors.Is(err, client.ErrUnauthorized) || !contains(err, "request unauthorized") {
				t.Fatalf("got %q, %v; want request unauthorized", got, err)
			}
		})
	}
}

// TestBearerToken: a token from one RCAR session fetches the resource by
// Authorization: Bearer with the matching TEE key (the CDH path).
func TestBearerToken(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("bearer-secret")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
		t.Fatal(err)
	}
	g := guest(t, k, false, nil)
	tok, err := g.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewTokenClient(k.URL, tok, g.TeeKey(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tc.GetResource(ctx, secretPath)
	if err != nil || string(got) != "bearer-secret" {
		t.Fatalf("bearer: %q %v", got, err)
	}
	// The same token with another key cannot decrypt: the JWE goes to the
	// key inside the token, not to whoever presents it.
	other := guest(t, k, false, nil)
	tc2, _ := client.NewTokenClient(k.URL, tok, other.TeeKey(), client.Options{})
	if _, err := tc2.GetResource(ctx, secretPath); err == nil {
		t.Fatal("decrypted with a key that is not in the token")
	}
	// A forged token is rejected.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":9999999999}`)) + "." + parts[2]
	tc3, _ := client.NewTokenClient(k.URL, forged, g.TeeKey(), client.Options{})
	if _, err := tc3.GetResource(ctx, secretPath); !contains(err, "TokenVerifierError") && !contains(err, "Token Verifier error") {
		t.Fatalf("forged token: %v", err)
	}
}

// TestAdmin reproduces Trustee's admin integration scenarios for each
// admin operation.
func TestAdmin(t *testing.T) {
	ctx := context.Background()
	ops := map[string]func(a *client.Admin) error{
		"set resource policy": func(a *client.Admin) error { return a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)) },
		"set attestation policy": func(a *client.Admin) error {
			return a.SetAttestationPolicy(ctx, "fake_policy_id", "rego", []byte(contraindicatedCPU))
		},
		"set secret": func(a *client.Admin) error { return a.SetResource(ctx, "a/b/c", []byte("x")) },
	}
	_, wrongKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			k := startKBS(t, kbsOpts{})
			if err := op(newAdmin(t, k, k.token(t))); err != nil {
				t.Fatalf("valid key: %v", err)
			}
			if err := op(newAdmin(t, k, adminToken(t, wrongKey, nil))); !contains(err, "Cannot verify token with any of the issuers") {
				t.Fatalf("wrong key: %v", err)
			}
			if err := op(newAdmin(t, k, adminToken(t, k.AdminKey, map[string]any{"iss": "someone-else"}))); !contains(err, "Cannot verify token with any of the issuers") {
				t.Fatalf("wrong issuer: %v", err)
			}
			if err := op(newAdmin(t, k, adminToken(t, k.AdminKey, map[string]any{"exp": 1}))); err == nil {
				t.Fatal("expired admin token accepted")
			}
			if err := op(newAdmin(t, k, "")); !contains(err, "Failed to parse HTTP Auth Bearer header") {
				t.Fatalf("no token: %v", err)
			}
			deny := startKBS(t, kbsOpts{adminMode: "DenyAll"})
			if err := op(newAdmin(t, deny, deny.token(t))); !contains(err, "DenyAll authorization_mode is enabled") {
				t.Fatalf("DenyAll: %v", err)
			}
			acl := startKBS(t, kbsOpts{acl: "^/kbs/v0/reference-value/[a-zA-Z0-9]+$"})
			if err := op(newAdmin(t, acl, acl.token(t))); !contains(err, "Role tester not allowed") {
				t.Fatalf("ACL: %v", err)
			}
		})
	}
}

// TestInitData reproduces Trustee's init_data integration scenarios.
func TestInitData(t *testing.T) {
	ctx := context.Background()
	toml, err := os.ReadFile("testdata/initdata.toml")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(toml)
	ae := `input.submods.cpu0["ear.veraison.annotated-evidence"]`
	policies := map[string]string{
		"digest pinned": `package policy
import rego.v1
default allow := false
allow if ` + ae + `.init_data == "` + base64.StdEncoding.EncodeToString(digest[:]) + `"`,
		"cdh.toml claim": `package policy
import rego.v1
default allow := false
allow if startswith(` + ae + `.init_data_claims["cdh.toml"].image.extra_root_certificates[0], "-----BEGIN CERTIFICATE-----")`,
		"agent policy claim": `package policy
import rego.v1
default allow := false
allow if ` + ae + `.init_data_claims.agent_policy_claims.containers[1].OCI.Process.Args[0] == "/opt/bitnami/scripts/nginx/entrypoint.sh"`,
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			k := startKBS(t, kbsOpts{})
			a := newAdmin(t, k, k.token(t))
			if err := a.SetResource(ctx, secretPath, []byte("init-secret")); err != nil {
				t.Fatal(err)
			}
			if err := a.SetResourcePolicy(ctx, []byte(p)); err != nil {
				t.Fatal(err)
			}
			got, err := guest(t, k, false, toml).GetResource(ctx, secretPath)
			if err != nil || string(got) != "init-secret" {
				t.Fatalf("with init-data: %q %v", got, err)
			}
			// Without init-data the same policy denies.
			if _, err := guest(t, k, false, nil).GetResource(ctx, secretPath); !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("without init-data: %v", err)
			}
		})
	}
	t.Run("identifiers extension", func(t *testing.T) {
		k := startKBS(t, kbsOpts{})
		tok, err := guest(t, k, false, toml).Attest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Submods map[string]map[string]json.RawMessage `json:"submods"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		var ids struct {
			Validated struct {
				Images []string `json:"container_images"`
				UIDs   []int    `json:"container_uids"`
			} `json:"validated"`
		}
		if err := json.Unmarshal(claims.Submods["cpu0"]["ear.trustee.identifiers"], &ids); err != nil {
			t.Fatalf("ear.trustee.identifiers: %v (%s)", err, payload)
		}
		if !reflect.DeepEqual(ids.Validated.Images, []string{"registry.k8s.io/pause:3.10", "bitnami/nginx:latest"}) ||
			!reflect.DeepEqual(ids.Validated.UIDs, []int{65535, 1001}) {
			t.Fatalf("identifiers %+v", ids.Validated)
		}
	})
}

// TestMetricsAndJWKS: Trustee's metric names are served and count a flow;
// the AS signing key is published as a JWKS.
func TestMetricsAndJWKS(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := guest(t, k, false, nil).GetResource(ctx, secretPath); err != nil {
		t.Fatal(err)
	}
	m := do(t, "GET", k.URL+"/metrics", nil, nil)
	for _, want := range []string{
		`kbs_attestation_successes_total{tee_type="sample"} 1`,
		`kbs_auth_requests_total 1`,
		`kbs_policy_approvals_total 1`,
		`kbs_resource_reads_total{resource_path="default/test/secret"} 1`,
		`kbs_resource_writes_total{resource_path="default/test/secret"} 1`,
		`kbs_http_request_duration_seconds_bucket`,
		`kbs_build_info{build_date="",git_hash="",version="test"} 1`,
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	j := do(t, "GET", k.URL+"/.well-known/jwks.json", nil, nil)
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(j.body, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["crv"] != "P-256" || jwks.Keys[0]["alg"] != "ES256" {
		t.Fatalf("jwks: %s", j.body)
	}
}
