package kbs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// TestSessionBoundAndIndexedExpiry: live sessions are bounded with a
// retryable error, and the sweeper deletes exactly what expired without
// listing the store.
func TestSessionBoundAndIndexedExpiry(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	sessStore, _ := be.Namespace(ctx, storage.NamespaceSession)
	pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
	now := time.Now()
	clock := func() time.Time { return now }
	counting := &listCounter{Store: sessStore}
	s, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{},
		Sessions: counting, Policies: pol, MaxSessions: 3, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	authReq := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/kbs/v0/auth", strings.NewReader(`{"version":"0.4.0","tee":"sample","extra-params":""}`)))
		return rec
	}
	for i := range 3 {
		if rec := authReq(); rec.Code != 200 {
			t.Fatalf("auth %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := authReq()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), protocol.ErrorTypePrefix+VariantTooManySessions) {
		t.Fatalf("over the bound: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	// Time passes: the three expire; the sweeper deletes them without List.
	now = now.Add(6 * time.Minute)
	n, err := s.sessions.sweepDue(ctx)
	if err != nil || n != 3 || counting.lists != 0 {
		t.Fatalf("sweepDue = %d, %v; lists %d", n, err, counting.lists)
	}
	if keys, _ := sessStore.List(ctx); len(keys) != 0 {
		t.Fatalf("left: %v", keys)
	}
	if rec := authReq(); rec.Code != 200 {
		t.Fatalf("after expiry: %d %s", rec.Code, rec.Body)
	}
}

type listCounter struct {
	storage.Store
	lists int
}

func (l *listCounter) List(ctx context.Context) ([]string, error) {
	l.lists++
	return l.Store.List(ctx)
}

// downStore fails every operation as a database that is away does.
type downStore struct{}

func (downStore) Get(context.Context, string) ([]byte, error)  { return nil, storage.ErrUnavailable }
func (downStore) Set(context.Context, string, []byte) error    { return storage.ErrUnavailable }
func (downStore) Create(context.Context, string, []byte) error { return storage.ErrUnavailable }
func (downStore) Delete(context.Context, string) error         { return storage.ErrUnavailable }
func (downStore) List(context.Context) ([]string, error)       { return nil, storage.ErrUnavailable }

// TestStorageDownIsRetryable: with the session store away, /auth and
// /attest fail fast with 503 StorageUnavailable and Retry-After.
func TestStorageDownIsRetryable(t *testing.T) {
	ctx := context.Background()
	pol, _ := memory.New().Namespace(ctx, storage.NamespaceKBS)
	s, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: downStore{}, Policies: pol})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/kbs/v0/auth", strings.NewReader(`{"version":"0.4.0","tee":"sample","extra-params":""}`)),
		func() *http.Request {
			r := httptest.NewRequest("POST", "/kbs/v0/attest", strings.NewReader(`{"runtime-data":{"nonce":"x","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`))
			r.AddCookie(&http.Cookie{Name: SessionCookie, Value: strings.Repeat("a", 32)})
			return r
		}(),
	} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			!strings.Contains(rec.Body.String(), VariantStorageUnavailable) {
			t.Errorf("%s: %d %v %s", req.URL.Path, rec.Code, rec.Header(), rec.Body)
		}
	}
}

// TestReadyz: /readyz answers 503 with Retry-After while storage is away,
// without naming hosts to the client; /healthz stays 200.
func TestReadyz(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	sess, _ := be.Namespace(ctx, storage.NamespaceSession)
	pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
	var down error
	s, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol,
		Ready: func(context.Context) error { return down }})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	if rec := get("/readyz"); rec.Code != 200 {
		t.Fatalf("ready: %d", rec.Code)
	}
	down = fmt.Errorf("Postgres: dial db.internal:5432: %w", storage.ErrUnavailable)
	rec := get("/readyz")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), "db.internal") {
		t.Fatalf("not ready: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := get("/healthz"); rec.Code != 200 {
		t.Fatalf("healthz while storage is down: %d", rec.Code)
	}
}

type getCounter struct {
	storage.Store
	gets int
}

func (g *getCounter) Get(ctx context.Context, key string) ([]byte, error) {
	g.gets++
	return g.Store.Get(ctx, key)
}

// TestSameReplicaSessionNoRead: /auth then /attest on the same server
// read no session from storage (round trips: one write each); a session
// attested elsewhere is still read from storage.
func TestSameReplicaSessionNoRead(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	inner, _ := be.Namespace(ctx, storage.NamespaceSession)
	sess := &getCounter{Store: inner}
	pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
	as := &blockingAS{entered: make(chan struct{}, 4), release: make(chan struct{})}
	close(as.release)
	s, err := New(ctx, Config{AS: as, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/kbs/v0/auth", strings.NewReader(`{"version":"0.4.0","tee":"sample","extra-params":""}`)))
	var ch protocol.Challenge
	if err := json.Unmarshal(rec.Body.Bytes(), &ch); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	body := `{"runtime-data":{"nonce":"` + ch.Nonce + `","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`
	r := httptest.NewRequest("POST", "/kbs/v0/attest", strings.NewReader(body))
	r.AddCookie(cookie)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	<-as.entered
	if rec.Code != 200 || sess.gets != 0 {
		t.Fatalf("attest: %d, %d session reads", rec.Code, sess.gets)
	}
	// Another server on the same store (a second replica) reads it.
	s2, err := New(ctx, Config{AS: as, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.sessions.get(ctx, cookie.Value, false)
	if err != nil || !got.attested() || sess.gets != 1 {
		t.Fatalf("second replica: %+v %v, %d reads", got, err, sess.gets)
	}
}

// TestResourceWithSessionStoreDown: a resource request whose session cannot
// be read gets a retryable 503, not "token not found".
func TestResourceWithSessionStoreDown(t *testing.T) {
	ctx := context.Background()
	pol, _ := memory.New().Namespace(ctx, storage.NamespaceKBS)
	s, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: downStore{}, Policies: pol,
		Plugins: map[string]Plugin{"resource": &ResourcePlugin{Store: pol}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/kbs/v0/resource/a/b/c", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: strings.Repeat("b", 32)})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), VariantStorageUnavailable) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
