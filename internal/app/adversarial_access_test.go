package app_test

// Adversarial access-decision tests: who gets a secret, through the real
// server over loopback.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/config"
	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/internal/app"
	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
	"github.com/sigil-attestation/sigil/policy"
)

// TestDeviceTeeAsPrimaryRefused: a guest that named a device TEE in /auth
// got a token with no cpu0, which Trustee's default policy then allowed.
func TestDeviceTeeAsPrimaryRefused(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	for _, tee := range []string{"sampledevice", "nvidia", "hygondcu"} {
		body := `{"version":"0.4.0","tee":"` + tee + `","extra-params":""}`
		r := do(t, "POST", k.URL+"/kbs/v0/auth", []byte(body), nil)
		wantErr(t, r, 401, "AttestationError", "device TEE and cannot be the primary evidence")
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: a session was created", tee)
		}
	}
}

// TestExtraTeeKeyPathIntoDeviceRefused: with extra_teekey_paths pointing at
// a device submodule, a secret was encrypted to a key that no CPU TEE
// vouched for.
func TestExtraTeeKeyPathIntoDeviceRefused(t *testing.T) {
	for _, tc := range []struct {
		ptr string
		ok  bool
	}{
		{"/submods/gpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey", false},
		{"/submods/switch0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey", false},
		{"/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey", true},
	} {
		cfg, _, err := config.Parse([]byte(`
[http_server]
sockets = ["127.0.0.1:0"]
insecure_http = true
[admin]
authorization_mode = "DenyAll"
[attestation_token]
insecure_header_jwk = true
extra_teekey_paths = ["`+tc.ptr+`"]
`), "toml", func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		kb, err := app.NewKBS(context.Background(), cfg, app.Options{})
		if kb != nil {
			kb.Close()
		}
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "CPU submodule")) {
			t.Errorf("%s: NewKBS error = %v, want ok=%v", tc.ptr, err, tc.ok)
		}
	}
}

// TestDefaultResourcePolicyFailsClosed: Trustee's default released secrets
// whatever ear.status said. Sigil's default needs a hardware cpu0 and every
// submodule affirming; Trustee's stays available by name.
func TestDefaultResourcePolicyFailsClosed(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("s")); err != nil {
		t.Fatal(err)
	}
	priv, err := jose.GenerateTeeKey(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jose.TeePubKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	sub := func(status ear.Status, tee string, withKey bool) ear.Submod {
		ae := map[string]any{tee: map[string]any{"svn": "1"}}
		if withKey {
			ae["runtime_data_claims"] = map[string]any{"tee-pubkey": pub.Map()}
		}
		return ear.Submod{Status: status, PolicyID: "default", AnnotatedEvidence: ae}
	}
	tokens := map[string]map[string]ear.Submod{
		"affirming tdx":           {"cpu0": sub(ear.StatusAffirming, "tdx", true)},
		"debug tdx (warning)":     {"cpu0": sub(ear.StatusWarning, "tdx", true)},
		"contraindicated tdx":     {"cpu0": sub(ear.StatusContraindicated, "tdx", true)},
		"affirming tdx, bad gpu":  {"cpu0": sub(ear.StatusAffirming, "tdx", true), "gpu0": sub(ear.StatusContraindicated, "nvidia", false)},
		"affirming gpu only":      {"gpu0": sub(ear.StatusAffirming, "nvidia", true)},
		"affirming sample":        {"cpu0": sub(ear.StatusAffirming, "sample", true)},
		"affirming tdx, good gpu": {"cpu0": sub(ear.StatusAffirming, "tdx", true), "gpu0": sub(ear.StatusAffirming, "nvidia", false)},
	}
	url := k.URL + "/kbs/v0/resource/" + secretPath
	get := func(name string) int {
		tok, err := k.KBS.Broker.Issue(tokens[name])
		if err != nil {
			t.Fatal(err)
		}
		return do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer " + tok}).status
	}
	sigilWant := map[string]int{
		"affirming tdx": 200, "affirming tdx, good gpu": 200,
		"debug tdx (warning)": 401, "contraindicated tdx": 401, "affirming tdx, bad gpu": 401,
		"affirming gpu only": 401, "affirming sample": 401,
	}
	for name, want := range sigilWant {
		if got := get(name); got != want {
			t.Errorf("default policy, %s: status %d, want %d", name, got, want)
		}
	}
	if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceTrusteeDefault)); err != nil {
		t.Fatal(err)
	}
	trusteeWant := map[string]int{
		"affirming tdx": 200, "debug tdx (warning)": 200, "contraindicated tdx": 200, "affirming tdx, bad gpu": 200,
		"affirming sample": 401,
	}
	for name, want := range trusteeWant {
		if got := get(name); got != want {
			t.Errorf("trustee default policy, %s: status %d, want %d", name, got, want)
		}
	}
}

// TestACLNotWidenedByQuery: an ACL regex used to be matched against the path
// plus query, so a pattern could be satisfied by text inside the query, and
// trailing segments on built-in endpoints were ignored.
func TestACLNotWidenedByQuery(t *testing.T) {
	k := startKBS(t, kbsOpts{acl: `^/kbs/v0/resource/.+/public$`})
	hdr := map[string]string{"Authorization": "Bearer " + k.token(t), "Content-Type": "application/octet-stream"}
	// The pattern is met only inside the query: denied, nothing written.
	for _, target := range []string{
		"/kbs/v0/resource/secret/key/x?a=/public",
		"/kbs/v0/resource/secret/key/x?/public",
		"/kbs/v0/resource/secret/key/x?a=1&b=/public",
	} {
		for _, method := range []string{"POST", "DELETE"} {
			r := do(t, method, k.URL+target, []byte("planted"), hdr)
			if r.status != 401 || !strings.Contains(r.info.Type, "Admin") || strings.Contains(r.info.Detail, "?") {
				t.Errorf("%s %s: %d %s", method, target, r.status, r.body)
			}
		}
	}
	for _, f := range k.storageFiles(t) {
		if strings.Contains(f, "secret") {
			t.Errorf("a denied write left %s", f)
		}
	}
	// In the path, the pattern allows; a query can only narrow.
	if r := do(t, "POST", k.URL+"/kbs/v0/resource/repo/key/public", []byte("ok"), hdr); r.status != 200 {
		t.Fatalf("in-scope write: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", k.URL+"/kbs/v0//resource/repo/key2/public", []byte("ok"), hdr); r.status != 200 {
		t.Fatalf("in-scope write with an empty segment: %d %s", r.status, r.body)
	}

	// Built-in endpoints with trailing segments: a reference-value ACL scoped
	// to one id must not authorize registering reference values.
	rv := startKBS(t, kbsOpts{acl: `^/kbs/v0/reference-value/[a-z]+$`})
	hdr = map[string]string{"Authorization": "Bearer " + rv.token(t)}
	msg := []byte(`{"version":"0.1.0","type":"sample","payload":"e30"}`)
	for _, target := range []string{"/kbs/v0/reference-value/abc", "/kbs/v0/resource-policy/abc", "/kbs/v0/attestation-policy/abc", "/kbs/v0/auth/abc"} {
		wantErr(t, do(t, "POST", rv.URL+target, msg, hdr), 404, "InvalidRequestPath", "")
	}
}

// TestStrictJSONBodies: duplicate members, member names in the wrong case
// and invalid UTF-8 are refused in every body, not silently resolved.
func TestStrictJSONBodies(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	hdr := map[string]string{"Authorization": "Bearer " + k.token(t)}
	allow, deny := b64url(policy.ResourceAllowAll), b64url(policy.ResourceDenyAll)
	cases := []struct {
		name, path, body string
		status           int
		variant          string
	}{
		{"resource-policy duplicate", "/kbs/v0/resource-policy", `{"policy":"` + deny + `","policy":"` + allow + `"}`, 401, "ParsePolicyError"},
		{"resource-policy wrong case", "/kbs/v0/resource-policy", `{"Policy":"` + allow + `"}`, 401, "ParsePolicyError"},
		{"resource-policy invalid utf-8", "/kbs/v0/resource-policy", "{\"policy\":\"" + allow + "\",\"x\":\"\xff\"}", 401, "ParsePolicyError"},
		{"attestation-policy duplicate", "/kbs/v0/attestation-policy", `{"policy_id":"default_cpu","policy_id":"x","policy":"` + allow + `"}`, 401, "SerdeError"},
		{"attestation-policy wrong case", "/kbs/v0/attestation-policy", `{"Policy_ID":"default_cpu","policy":"` + allow + `"}`, 401, "SerdeError"},
		{"reference-value duplicate payload", "/kbs/v0/reference-value", `{"version":"0.1.0","type":"sample","payload":"e30","payload":"eyJ4IjpbIjEiXX0"}`, 401, "RvpsError"},
		{"reference-value duplicate name in payload", "/kbs/v0/reference-value", `{"version":"0.1.0","type":"sample","payload":"` + b64url(`{"svn":["1"],"svn":["9"]}`) + `"}`, 401, "RvpsError"},
		{"auth wrong case", "/kbs/v0/auth", `{"Version":"0.4.0","TEE":"sample","extra-params":""}`, 401, "AttestationError"},
		{"auth duplicate tee", "/kbs/v0/auth", `{"version":"0.4.0","tee":"nvidia","tee":"sample","extra-params":""}`, 401, "AttestationError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, do(t, "POST", k.URL+c.path, []byte(c.body), hdr), c.status, c.variant, "")
		})
	}
	// The stored resource policy is still the default.
	stored, err := os.ReadFile(filepath.Join(k.Dir, "storage", "kbs", "resource-policy.rego"))
	if err != nil || string(stored) != policy.ResourceDefault {
		t.Errorf("resource policy changed by rejected writes (%v)", err)
	}
}

// TestHostilePolicies: a policy cannot take the server down or reach
// outside, and an admin learns why an upload was refused.
func TestHostilePolicies(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("s")); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"Authorization": "Bearer " + k.token(t)}
	setResource := func(text string) rawResp {
		return do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{"policy":"`+b64url(text)+`"}`), hdr)
	}
	setAttestation := func(id, text string) rawResp {
		return do(t, "POST", k.URL+"/kbs/v0/attestation-policy", []byte(`{"policy_id":"`+id+`","policy":"`+b64url(text)+`"}`), hdr)
	}
	// Builtins that reach outside are refused at upload, with the reason.
	wantErr(t, setResource("package policy\nimport rego.v1\ndefault allow := false\nallow if { http.send({\"method\":\"get\",\"url\":\"http://127.0.0.1:1\"}) }\n"),
		401, "PolicyEngineError", "http.send")
	wantErr(t, setResource("package policy\nimport rego.v1\ndefault allow := false\nallow if { net.lookup_ip_addr(\"example.com\") }\n"),
		401, "PolicyEngineError", "net.lookup_ip_addr")
	wantErr(t, setAttestation("default_cpu", "package policy\nimport rego.v1\ntrust_claims := {\"hardware\": 2} if { opa.runtime() }\n"),
		401, "AttestationError", "Set Attestation Policy failed: ")
	// A resource policy that would iterate 1e8 numbers: a clean
	// PolicyEngineError, quickly, and the server keeps serving.
	if r := setResource("package policy\nimport rego.v1\ndefault allow := false\nallow if { count([x | some x in numbers.range(1, 100000000)]) > 0 }\n"); r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	g, _ := client.NewRCAR(k.URL, sampleProvider(), client.Options{})
	tok, err := g.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := heapInuse()
	start := time.Now()
	r := do(t, "GET", k.URL+"/kbs/v0/resource/"+secretPath, nil, map[string]string{"Authorization": "Bearer " + tok})
	took := time.Since(start)
	wantErr(t, r, 401, "PolicyEngineError", "")
	if grown := int64(heapInuse()) - int64(before); took > 2500*time.Millisecond || grown > 256<<20 {
		t.Errorf("heavy policy: %v, heap +%d MiB", took, grown>>20)
	}
	// An appraisal policy that would iterate 3e6 numbers fails that
	// attestation fast instead of slowing every /attest.
	if r := setAttestation("default_cpu", "package policy\nimport rego.v1\ntrust_claims := {\"hardware\": 2} if { count([x | some x in numbers.range(1, 3000000)]) > 0 }\n"); r.status != 200 {
		t.Fatalf("appraisal upload: %d %s", r.status, r.body)
	}
	cookie, nonce := auth(t, k)
	start = time.Now()
	r = do(t, "POST", k.URL+"/kbs/v0/attest", sampleAttestation(t, nonce, nil), map[string]string{"Cookie": cookie})
	wantErr(t, r, 401, "AttestationError", "")
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("runaway appraisal policy held /attest %v", took)
	}
}

// TestTimeShiftedTokens: tokens that are not yet valid, issued in the
// future, or valid for longer than the broker ever issues are refused by
// the KBS (the test KBS trusts header keys, so a guest can sign its own).
func TestTimeShiftedTokens(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("s")); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	teeKey, _ := jose.GenerateTeeKey(nil, "")
	teePub, _ := jose.TeePubKeyOf(teeKey)
	now := k.Clock.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"eat_profile": "tag:github.com,2023:veraison/ear", "iss": "x",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"submods": map[string]any{"cpu0": map[string]any{
				"ear.status": "affirming", "ear.appraisal-policy-id": "default",
				"ear.veraison.annotated-evidence": map[string]any{
					"tdx":                 map[string]any{"svn": "1"},
					"runtime_data_claims": map[string]any{"tee-pubkey": teePub.Map()},
				},
			}},
		}
		mod(c)
		return c
	}
	cases := []struct {
		name string
		mod  func(map[string]any)
		want int
	}{
		{"valid", func(map[string]any) {}, 200},
		{"nbf in the future", func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() }, 401},
		{"iat in the future", func(c map[string]any) {
			c["iat"] = now.Add(10 * time.Minute).Unix()
			c["exp"] = now.Add(14 * time.Minute).Unix()
		}, 401},
		{"exp a year away", func(c map[string]any) { c["exp"] = now.AddDate(1, 0, 0).Unix() }, 401},
		{"exp a year away, no iat", func(c map[string]any) { delete(c, "iat"); c["exp"] = now.AddDate(1, 0, 0).Unix() }, 401},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, 401},
		{"expired", func(c map[string]any) {
			c["iat"] = now.Add(-10 * time.Minute).Unix()
			c["exp"] = now.Add(-5 * time.Minute).Unix()
		}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := jwstest.Sign(t, "ES256", key, map[string]any{"jwk": jwstest.JWK(&key.PublicKey, "ES256", "")}, claims(c.mod))
			r := do(t, "GET", k.URL+"/kbs/v0/resource/"+secretPath, nil, map[string]string{"Authorization": "Bearer " + tok})
			if r.status != c.want || (c.want == 401 && !strings.Contains(r.info.Type, "TokenVerifierError")) {
				t.Errorf("%d %s", r.status, r.body)
			}
		})
	}
}
