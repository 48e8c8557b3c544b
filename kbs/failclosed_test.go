package kbs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/protocol"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
)

// blockingAS holds every evaluation until release is closed.
type blockingAS struct {
	noAS
	entered chan struct{}
	release chan struct{}
}

func (b *blockingAS) Evaluate(ctx context.Context, _ *attestation.Request) (*attestation.Result, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &attestation.Result{Token: "tok"}, nil
}

// TestConcurrentAttestOneSession: while one /attest of a session is being
// evaluated, a second one on the same session is refused instead of being
// verified against the same nonce in parallel.
func TestConcurrentAttestOneSession(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	sess, _ := be.Namespace(ctx, storage.NamespaceSession)
	pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
	as := &blockingAS{entered: make(chan struct{}, 4), release: make(chan struct{})}
	s, err := New(ctx, Config{AS: as, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/kbs/v0/auth", strings.NewReader(`{"version":"0.4.0","tee":"sample","extra-params":""}`)))
	if rec.Code != 200 {
		t.Fatalf("auth: %d %s", rec.Code, rec.Body)
	}
	var ch protocol.Challenge
	if err := json.Unmarshal(rec.Body.Bytes(), &ch); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	body := `{"runtime-data":{"nonce":"` + ch.Nonce + `","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`
	attest := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/kbs/v0/attest", strings.NewReader(body))
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- attest() }()
	<-as.entered
	second := attest()
	var info protocol.ErrorInformation
	_ = json.Unmarshal(second.Body.Bytes(), &info)
	if second.Code != http.StatusUnauthorized || info.Type != protocol.ErrorTypePrefix+VariantAttestationError {
		t.Fatalf("concurrent attest: %d %s", second.Code, second.Body)
	}
	close(as.release)
	if w := <-first; w.Code != 200 {
		t.Fatalf("first attest: %d %s", w.Code, w.Body)
	}
	// Once the first finished, the session is attested and a repeat gets
	// its token.
	if w := attest(); w.Code != 200 || !strings.Contains(w.Body.String(), `"tok"`) {
		t.Fatalf("after: %d %s", w.Code, w.Body)
	}
}

// TestStoredPolicyKeptOnUpgrade: the new fail-closed default is written
// only where no resource policy exists; a deployment's stored policy
// (Trustee's default included) is left as it is.
func TestStoredPolicyKeptOnUpgrade(t *testing.T) {
	ctx := context.Background()
	for _, stored := range []string{"", policy.ResourceTrusteeDefault, policy.ResourceAllowAll} {
		be := memory.New()
		sess, _ := be.Namespace(ctx, storage.NamespaceSession)
		pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
		if stored != "" {
			if err := pol.Set(ctx, resourcePolicyKey, []byte(stored)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol}); err != nil {
			t.Fatal(err)
		}
		got, err := pol.Get(ctx, resourcePolicyKey)
		want := stored
		if want == "" {
			want = policy.ResourceDefault
		}
		if err != nil || string(got) != want {
			t.Errorf("stored %q: after New the policy is %q (%v)", stored[:min(len(stored), 40)], got[:min(len(got), 40)], err)
		}
	}
}
