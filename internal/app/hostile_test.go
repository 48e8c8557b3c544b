package app_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/protocol"
)

type rawResp struct {
	status int
	info   protocol.ErrorInformation
	body   []byte
	header http.Header
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) rawResp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawResp{status: resp.StatusCode, body: b, header: resp.Header}
	_ = json.Unmarshal(b, &r.info)
	return r
}

func wantErr(t *testing.T, r rawResp, status int, variant, detailSub string) {
	t.Helper()
	if r.status != status || r.info.Type != protocol.ErrorTypePrefix+variant || !strings.Contains(r.info.Detail, detailSub) {
		t.Fatalf("got %d %s, want %d %s containing %q", r.status, r.body, status, variant, detailSub)
	}
}

// auth runs /auth and returns the session cookie and nonce.
func auth(t *testing.T, k *testKBS) (cookie, nonce string) {
	t.Helper()
	r := do(t, "POST", k.URL+"/kbs/v0/auth", []byte(`{"version":"0.4.0","tee":"sample","extra-params":""}`), nil)
	if r.status != 200 {
		t.Fatalf("auth: %d %s", r.status, r.body)
	}
	var ch protocol.Challenge
	if err := json.Unmarshal(r.body, &ch); err != nil || len(ch.Nonce) != 44 || string(ch.ExtraParams) != `""` {
		t.Fatalf("challenge %s", r.body)
	}
	sc := r.header.Get("Set-Cookie")
	id, _, _ := strings.Cut(strings.TrimPrefix(sc, "kbs-session-id="), ";")
	if len(id) != 32 || !strings.Contains(sc, "; Expires=") || strings.Contains(sc, "Secure") {
		t.Fatalf("cookie %q", sc)
	}
	return "kbs-session-id=" + id, ch.Nonce
}

// attestation builds a sample attestation for nonce; reportData overrides
// the correct binding when non-nil.
func sampleAttestation(t *testing.T, nonce string, reportData []byte) []byte {
	t.Helper()
	priv, _ := jose.GenerateTeeKey(nil, "")
	pub, _ := jose.TeePubKeyOf(priv)
	if reportData == nil {
		rd, _ := jcs.Marshal(map[string]any{"additional-evidence": "", "nonce": nonce, "tee-pubkey": pub.Map()})
		d := sha512.Sum384(rd)
		reportData = d[:]
	}
	ev, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(reportData)})
	b, _ := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: pub},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	return b
}

func TestHostileAuth(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	cases := []struct{ name, body, detail string }{
		{"malformed", `{"version":`, "RCAR handshake Auth failed"},
		{"wrong types", `{"version":4,"tee":"sample","extra-params":""}`, "RCAR handshake Auth failed"},
		{"missing extra-params", `{"version":"0.4.0","tee":"sample"}`, "extra-params"},
		{"unknown tee", `{"version":"0.4.0","tee":"quantum","extra-params":""}`, "unknown variant"},
		{"old version", `{"version":"0.3.0","tee":"sample","extra-params":""}`, "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.3.0"},
		{"empty", ``, "RCAR handshake Auth failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, do(t, "POST", k.URL+"/kbs/v0/auth", []byte(c.body), nil), 401, "AttestationError", c.detail)
		})
	}
	if files := k.storageFiles(t); slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, "kbs_protocol_session") }) {
		t.Fatalf("a failed /auth wrote a session: %v", files)
	}
}

func TestHostileAttest(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	url := k.URL + "/kbs/v0/attest"
	t.Run("no cookie", func(t *testing.T) {
		wantErr(t, do(t, "POST", url, sampleAttestation(t, "x", nil), nil), 401, "AttestationError", "RCAR handshake Attest failed")
	})
	t.Run("unknown session", func(t *testing.T) {
		wantErr(t, do(t, "POST", url, sampleAttestation(t, "x", nil), map[string]string{"Cookie": "kbs-session-id=00000000000040008000000000000000"}),
			401, "AttestationError", "RCAR handshake Attest failed")
	})
	t.Run("hostile cookie", func(t *testing.T) {
		wantErr(t, do(t, "POST", url, sampleAttestation(t, "x", nil), map[string]string{"Cookie": "kbs-session-id=../../etc/passwd"}),
			401, "AttestationError", "RCAR handshake Attest failed")
	})
	for _, body := range []string{`{`, `[]`, `{"runtime-data":{}}`, `{"runtime-data":{"nonce":1},"tee-evidence":{}}`} {
		t.Run("malformed "+body, func(t *testing.T) {
			cookie, _ := auth(t, k)
			wantErr(t, do(t, "POST", url, []byte(body), map[string]string{"Cookie": cookie}), 401, "AttestationError", "RCAR handshake Attest failed")
		})
	}
	t.Run("wrong nonce then retry", func(t *testing.T) {
		cookie, nonce := auth(t, k)
		wantErr(t, do(t, "POST", url, sampleAttestation(t, "AAAA", nil), map[string]string{"Cookie": cookie}), 401, "AttestationError", "Attest failed")
		// The session stays Authed: the right nonce still works.
		if r := do(t, "POST", url, sampleAttestation(t, nonce, nil), map[string]string{"Cookie": cookie}); r.status != 200 {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
	})
	t.Run("report data mismatch", func(t *testing.T) {
		cookie, nonce := auth(t, k)
		wantErr(t, do(t, "POST", url, sampleAttestation(t, nonce, make([]byte, 48)), map[string]string{"Cookie": cookie}), 401, "AttestationError", "Attest failed")
	})
	t.Run("unsupported init-data format", func(t *testing.T) {
		cookie, nonce := auth(t, k)
		var m map[string]any
		_ = json.Unmarshal(sampleAttestation(t, nonce, nil), &m)
		m["init-data"] = map[string]string{"format": "json", "body": "{}"}
		b, _ := json.Marshal(m)
		wantErr(t, do(t, "POST", url, b, map[string]string{"Cookie": cookie}), 401, "AttestationError", "Attest failed")
	})
	t.Run("replay after expiry", func(t *testing.T) {
		cookie, nonce := auth(t, k)
		body := sampleAttestation(t, nonce, nil)
		k.Clock.Advance(6 * time.Minute)
		defer k.Clock.Advance(-6 * time.Minute)
		wantErr(t, do(t, "POST", url, body, map[string]string{"Cookie": cookie}), 401, "AttestationError", "Attest failed")
	})
	t.Run("re-attest returns the stored token", func(t *testing.T) {
		cookie, nonce := auth(t, k)
		first := do(t, "POST", url, sampleAttestation(t, nonce, nil), map[string]string{"Cookie": cookie})
		second := do(t, "POST", url, sampleAttestation(t, "other", nil), map[string]string{"Cookie": cookie})
		if first.status != 200 || !bytes.Equal(first.body, second.body) {
			t.Fatalf("re-attest: %s vs %s", first.body, second.body)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		cookie, _ := auth(t, k)
		big := bytes.Repeat([]byte("a"), 2<<20+1)
		wantErr(t, do(t, "POST", url, big, map[string]string{"Cookie": cookie}), 413, "PayloadTooLarge", "payload_request_size")
	})
	if r := do(t, "GET", k.URL+"/healthz", nil, nil); r.status != 200 {
		t.Fatalf("server down: %d", r.status)
	}
}

func TestHostileResourcePaths(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	tok := k.token(t)
	adminHdr := map[string]string{"Authorization": "Bearer " + tok}
	before := k.storageFiles(t)
	bad := []struct {
		path    string
		status  int
		variant string
	}{
		{"/kbs/v0/resource/%2e%2e/%2e%2e/etc", 404, "InvalidRequestPath"},
		{"/kbs/v0/resource/a%2Fb/c/d", 404, "InvalidRequestPath"},
		{"/kbs/v0/resource/a%2fb/c/d", 404, "InvalidRequestPath"},
		{"/kbs/v0/resource/a%5c..%5cb/c/d", 404, "InvalidRequestPath"},
		{"/kbs/v0/resource/a/b%00/c", 404, "InvalidRequestPath"},
		{"/kbs/v0/resource/.hidden/b/c", 401, "PluginInternalError"},
		{"/kbs/v0/resource/a/b", 401, "PluginInternalError"},
		{"/kbs/v0/resource/a/b/c/d", 401, "PluginInternalError"},
		{"/kbs/v0/nosuchplugin/a/b/c", 404, "PluginNotFound"},
		{"/kbs/v0/", 404, "PluginNotFound"},
	}
	for _, c := range bad {
		t.Run(c.path, func(t *testing.T) {
			r := do(t, "POST", k.URL+c.path, []byte("evil"), adminHdr)
			if r.status != c.status || r.info.Type != protocol.ErrorTypePrefix+c.variant {
				t.Fatalf("got %d %s; want %d %s", r.status, r.body, c.status, c.variant)
			}
		})
	}
	if after := k.storageFiles(t); !slices.Equal(before, after) {
		t.Fatalf("hostile writes changed storage: %v → %v", before, after)
	}
	// Storage file names follow Trustee's layout.
	a := newAdmin(t, k, tok)
	if err := a.SetResource(ctx, "one/two/three", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(k.storageFiles(t), `repository/one\x2Ftwo\x2Fthree`) {
		t.Fatalf("layout: %v", k.storageFiles(t))
	}
	// Missing resource and deleting it: Trustee's 401 PluginInternalError.
	wantErr(t, do(t, "DELETE", k.URL+"/kbs/v0/resource/no/such/thing", nil, adminHdr), 401, "PluginInternalError", "Plugin internal error")
	// Unsupported methods never reach a handler.
	if r := do(t, "PATCH", k.URL+"/kbs/v0/resource/a/b/c", nil, adminHdr); r.status != 405 {
		t.Fatalf("PATCH: %d", r.status)
	}
	if r := do(t, "POST", k.URL+"/metrics", nil, nil); r.status != 405 {
		t.Fatalf("POST /metrics: %d", r.status)
	}
}

func TestHostileTokens(t *testing.T) {
	ctx := context.Background()
	k := startKBS(t, kbsOpts{})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
		t.Fatal(err)
	}
	url := k.URL + "/kbs/v0/resource/" + secretPath
	wantErr(t, do(t, "GET", url, nil, nil), 401, "TokenNotFound", "Attestation Token not found")
	wantErr(t, do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer not.a.jwt"}), 401, "TokenVerifierError", "Token Verifier error")
	wantErr(t, do(t, "GET", url, nil, map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}), 401, "TokenNotFound", "")

	g, _ := client.NewRCAR(k.URL, sampleProvider(), client.Options{})
	tok, err := g.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer " + tok}); r.status != 200 {
		t.Fatalf("valid bearer: %d %s", r.status, r.body)
	}
	// Expired: token lifetime 5 min + 60 s leeway.
	k.Clock.Advance(7 * time.Minute)
	wantErr(t, do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer " + tok}), 401, "TokenVerifierError", "Token Verifier error")
	k.Clock.Advance(-7 * time.Minute)
	// Admin token is not an attestation token.
	wantErr(t, do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer " + k.token(t)}), 401, "TokenVerifierError", "")
	// Admin endpoints with an attestation token.
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{"policy":""}`), map[string]string{"Authorization": "Bearer " + tok}),
		401, "AdminAuthAccess", "admin access denied for endpoint resource-policy")
	// Resource policy endpoint input validation.
	hdr := map[string]string{"Authorization": "Bearer " + k.token(t)}
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{}`), hdr), 401, "ParsePolicyError", "Failed to parse policy")
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{"policy":5}`), hdr), 401, "ParsePolicyError", "Failed to parse policy")
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{"policy":"!!"}`), hdr), 401, "ParsePolicyError", "Failed to parse policy")
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/resource-policy", []byte(`{"policy":"`+b64url("package policy\nallow if {")+`"}`), hdr),
		401, "PolicyEngineError", "Policy engine error")
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/attestation-policy", []byte(`{"policy_id":"default_cpu","policy":"`+b64url("not rego {")+`"}`), hdr),
		401, "AttestationError", "Set Attestation Policy failed")
	wantErr(t, do(t, "GET", k.URL+"/kbs/v0/reference-value/missing", nil, hdr), 401, "RvpsError", "RVPS configuration failed")
	wantErr(t, do(t, "POST", k.URL+"/kbs/v0/reference-value", []byte(`{"version":"0.2.0","type":"sample","payload":""}`), hdr),
		401, "RvpsError", "Version unmatched! Need 0.1.0, given 0.2.0.")
	// The allow-all policy is still in force after the rejected writes.
	if r := do(t, "GET", k.URL+"/kbs/v0/resource-policy", nil, hdr); r.status != 200 || string(r.body) != `["resource-policy"]` {
		t.Fatalf("policy list: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", url, nil, map[string]string{"Authorization": "Bearer " + tok}); r.status != 200 {
		t.Fatalf("after rejected writes: %d %s", r.status, r.body)
	}
}

func TestHeaderLimit(t *testing.T) {
	k := startKBS(t, kbsOpts{extraTOML: "\n[sigil]\nheader_limit_kib = 64\n"})
	big := strings.Repeat("a", 70<<10)
	r := do(t, "GET", k.URL+"/kbs/v0/resource/a/b/c", nil, map[string]string{"Authorization": "Bearer " + big})
	wantErr(t, r, 431, "RequestHeaderFieldsTooLarge", "sigil.header_limit_kib")
	// Within the limit the request reaches the token check.
	r = do(t, "GET", k.URL+"/kbs/v0/resource/a/b/c", nil, map[string]string{"Authorization": "Bearer " + big[:60<<10]})
	wantErr(t, r, 401, "TokenVerifierError", "")
}
