package client_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/client/kbstest"
	"github.com/sigil-attestation/sigil/internal/jose"
)

func newFake(t *testing.T, cfg kbstest.Config) (*kbstest.KBS, *httptest.Server) {
	t.Helper()
	k := kbstest.New(cfg)
	srv := httptest.NewServer(k)
	t.Cleanup(srv.Close)
	return k, srv
}

// sleeper records the waits instead of sleeping.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func newRCAR(t *testing.T, url string, ev client.EvidenceProvider, opts client.Options) *client.RCAR {
	t.Helper()
	if opts.Sleep == nil {
		opts.Sleep = (&sleeper{}).sleep
	}
	c, err := client.NewRCAR(url, ev, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGetResourceFlow(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	k.SetResource("default/key/1", []byte("shhhhhhh"))
	c := newRCAR(t, srv.URL, sample.New(false), client.Options{})
	got, err := c.GetResource(context.Background(), "default/key/1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "shhhhhhh" {
		t.Fatalf("resource = %q", got)
	}
	reqs := k.Requests()
	var seq []string
	for _, r := range reqs {
		seq = append(seq, r.Method+" "+r.Path)
		if ua := r.Header.Get("User-Agent"); ua != client.UserAgent {
			t.Errorf("%s %s: User-Agent %q", r.Method, r.Path, ua)
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("%s %s: RCAR client sent Authorization", r.Method, r.Path)
		}
	}
	want := []string{"GET resource/default/key/1", "POST auth", "POST attest", "GET resource/default/key/1"}
	if strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Fatalf("requests = %v, want %v", seq, want)
	}
	if reqs[0].Cookie || !reqs[2].Cookie || !reqs[3].Cookie {
		t.Errorf("cookie flags = %v %v %v, want false true true", reqs[0].Cookie, reqs[2].Cookie, reqs[3].Cookie)
	}
	wantAuth := `{"version":"0.4.0","tee":"sample","extra-params":{"supported-hash-algorithms":["sha256","sha384","sha512","sm3"]}}`
	if string(reqs[1].Body) != wantAuth {
		t.Errorf("auth body = %s, want %s", reqs[1].Body, wantAuth)
	}
	for _, i := range []int{1, 2} {
		if ct := reqs[i].Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s Content-Type = %q", reqs[i].Path, ct)
		}
	}
	var att map[string]json.RawMessage
	if err := json.Unmarshal(reqs[2].Body, &att); err != nil {
		t.Fatal(err)
	}
	if string(att["init-data"]) != "null" {
		t.Errorf("init-data = %s, want null", att["init-data"])
	}
	if _, ok := att["tee-evidence"]; !ok {
		t.Error("attestation lacks tee-evidence")
	}
	// The session cookie now authenticates directly.
	if _, err := c.GetResource(context.Background(), "default/key/1"); err != nil {
		t.Fatal(err)
	}
	if n := k.Counts(); n.Auth != 1 || n.Attest != 1 || n.ResourceGets != 3 {
		t.Errorf("counts = %+v", n)
	}
}

func TestHashSelection(t *testing.T) {
	tests := []struct {
		selected string
		device   bool
		wantErr  string
	}{
		{selected: ""},
		{selected: "sha256"},
		{selected: "sha384"},
		{selected: "sha512", device: true},
		{selected: "SHA512"},
		{selected: "sha256", device: true},
		{selected: "sm3", wantErr: "not supported"},
		{selected: "md5", wantErr: "unknown hash algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.selected, func(t *testing.T) {
			k, srv := newFake(t, kbstest.Config{SelectHash: tt.selected})
			c := newRCAR(t, srv.URL, sample.New(tt.device), client.Options{})
			_, err := c.Attest(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Attest error = %v, want %q", err, tt.wantErr)
				}
				if n := k.Counts(); n.Auth != 5 || n.Attest != 0 {
					t.Errorf("counts = %+v, want 5 auths and no attest", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			atts := k.Attestations()
			if len(atts) != 1 {
				t.Fatalf("%d attestations", len(atts))
			}
			if hasDev := atts[0].TeeEvidence.AdditionalEvidence != ""; hasDev != tt.device {
				t.Errorf("additional evidence present = %v, want %v", hasDev, tt.device)
			}
		})
	}
}

func TestAttestCachesToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	k, srv := newFake(t, kbstest.Config{Now: clock, TokenTTL: time.Minute})
	c := newRCAR(t, srv.URL, sample.New(false), client.Options{Now: clock})
	ctx := context.Background()
	t1, err := c.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := c.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if t1 != t2 || k.Counts().Auth != 1 {
		t.Fatalf("token not cached: same=%v auths=%d", t1 == t2, k.Counts().Auth)
	}
	now = now.Add(2 * time.Minute) // past exp
	t3, err := c.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if t3 == t1 || k.Counts().Auth != 2 {
		t.Fatalf("expired token reused: same=%v auths=%d", t3 == t1, k.Counts().Auth)
	}
}

// badEvidence produces sample evidence over the wrong digest.
type badEvidence struct{ *sample.Attester }

func (b badEvidence) PrimaryEvidence(ctx context.Context, _ []byte) (json.RawMessage, error) {
	return b.Attester.PrimaryEvidence(ctx, make([]byte, 48))
}

func TestAttestRetries(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	s := &sleeper{}
	c := newRCAR(t, srv.URL, badEvidence{sample.New(false)}, client.Options{Sleep: s.sleep})
	_, err := c.Attest(context.Background())
	if err == nil || !strings.Contains(err.Error(), "report data mismatch") {
		t.Fatalf("Attest error = %v", err)
	}
	var serr *client.ServerError
	if !errors.As(err, &serr) || serr.Status != http.StatusUnauthorized {
		t.Errorf("error does not wrap a 401 ServerError: %v", err)
	}
	if n := k.Counts(); n.Auth != 5 || n.Attest != 5 {
		t.Errorf("counts = %+v, want 5 handshakes", n)
	}
	if len(s.waits) != 4 {
		t.Fatalf("waits = %v, want 4", s.waits)
	}
	for _, d := range s.waits {
		if d != time.Second {
			t.Errorf("wait %v, want 1s", d)
		}
	}
}

func TestAttestStopsOnCancel(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	sleep := func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	c := newRCAR(t, srv.URL, badEvidence{sample.New(false)}, client.Options{Sleep: sleep})
	if _, err := c.Attest(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Attest error = %v, want context.Canceled", err)
	}
	if n := k.Counts(); n.Auth != 1 {
		t.Errorf("auths = %d, want 1", n.Auth)
	}
}

func TestGetResourceErrors(t *testing.T) {
	tests := []struct {
		name       string
		cfg        kbstest.Config
		deny       bool
		path       string
		wantIs     error
		wantStatus int
		wantGets   int
		wantAuths  int
	}{
		{name: "404", path: "default/key/missing", wantIs: client.ErrResourceNotFound, wantStatus: 404, wantGets: 2, wantAuths: 1},
		{name: "trustee 401 for missing", cfg: kbstest.Config{MissingResourceStatus: 401}, path: "default/key/missing",
			wantIs: client.ErrUnauthorized, wantStatus: 401, wantGets: 3, wantAuths: 2},
		{name: "policy deny", deny: true, path: "default/key/1", wantIs: client.ErrUnauthorized, wantStatus: 401, wantGets: 3, wantAuths: 2},
		{name: "unknown plugin", path: "kbs+nope:///a/b", wantIs: client.ErrResourceNotFound, wantStatus: 404, wantGets: 0, wantAuths: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, srv := newFake(t, tt.cfg)
			k.SetResource("default/key/1", []byte("x"))
			k.SetDenyAll(tt.deny)
			c := newRCAR(t, srv.URL, sample.New(false), client.Options{})
			_, err := c.GetResource(context.Background(), tt.path)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
			var serr *client.ServerError
			if !errors.As(err, &serr) || serr.Status != tt.wantStatus || !serr.HasErrorInformation() {
				t.Fatalf("error %v does not wrap a ServerError with status %d", err, tt.wantStatus)
			}
			if tt.wantIs == client.ErrUnauthorized && !strings.Contains(err.Error(), "request unauthorized") {
				t.Errorf("error %q lacks `request unauthorized`", err)
			}
			if n := k.Counts(); n.ResourceGets != tt.wantGets || n.Auth != tt.wantAuths {
				t.Errorf("counts = %+v, want %d gets and %d auths", n, tt.wantGets, tt.wantAuths)
			}
		})
	}
}

func TestReattestAfterSessionLoss(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	k.SetResource("r/t/g", []byte("v"))
	c := newRCAR(t, srv.URL, sample.New(true), client.Options{})
	ctx := context.Background()
	if _, err := c.GetResource(ctx, "r/t/g"); err != nil {
		t.Fatal(err)
	}
	k.DropSessions()
	if got, err := c.GetResource(ctx, "kbs:///r/t/g"); err != nil || string(got) != "v" {
		t.Fatalf("GetResource = %q, %v", got, err)
	}
	if n := k.Counts(); n.Auth != 2 || n.ResourceGets != 4 {
		t.Errorf("counts = %+v", n)
	}
}

func TestGetResourceBadStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"401 not ErrorInformation", 401, "go away", "401 without ErrorInformation"},
		{"500", 500, `{"type":"t","detail":"boom"}`, "KBS internal error"},
		{"200 not JWE", 200, `[1]`, "not a JWE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gets++
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := newRCAR(t, srv.URL, sample.New(false), client.Options{})
			_, err := c.GetResource(context.Background(), "a/b/c")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, client.ErrUnauthorized) {
				t.Error("hard failure reported as unauthorized")
			}
			if gets != 1 {
				t.Errorf("%d requests, want 1", gets)
			}
		})
	}
}

func TestBaseURLPrefix(t *testing.T) {
	k := kbstest.New(kbstest.Config{})
	k.SetResource("a/b/c", []byte("prefixed"))
	mux := http.NewServeMux()
	mux.Handle("/some/prefix/", http.StripPrefix("/some/prefix", k))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newRCAR(t, srv.URL+"/some/prefix//", sample.New(false), client.Options{})
	got, err := c.GetResource(context.Background(), "a/b/c")
	if err != nil || string(got) != "prefixed" {
		t.Fatalf("GetResource = %q, %v", got, err)
	}
}

func TestTEEKeyKinds(t *testing.T) {
	for _, alg := range []string{"ECDH-ES+A256KW-P256", "ECDH-ES+A256KW-P521", "RSA-OAEP-256"} {
		t.Run(alg, func(t *testing.T) {
			key, err := jose.GenerateTeeKey(rand.Reader, alg)
			if err != nil {
				t.Fatal(err)
			}
			k, srv := newFake(t, kbstest.Config{})
			k.SetResource("a/b/c", []byte("payload for "+alg))
			c := newRCAR(t, srv.URL, sample.New(false), client.Options{TeeKey: key})
			if c.TeeKey() != key {
				t.Error("TeeKey() is not the configured key")
			}
			got, err := c.GetResource(context.Background(), "a/b/c")
			if err != nil || string(got) != "payload for "+alg {
				t.Fatalf("GetResource = %q, %v", got, err)
			}
		})
	}
}

func TestInitData(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	toml := "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"a.toml\" = '''<&>'''\n"
	c := newRCAR(t, srv.URL, sample.New(false), client.Options{InitData: []byte(toml)})
	if _, err := c.Attest(context.Background()); err != nil {
		t.Fatal(err)
	}
	atts := k.Attestations()
	if len(atts) != 1 || atts[0].InitData == nil || atts[0].InitData.Format != "toml" || atts[0].InitData.Body != toml {
		t.Fatalf("init-data = %+v", atts[0].InitData)
	}
}

func TestTokenClient(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	k.SetResource("a/b/c", []byte("passport"))
	rc := newRCAR(t, srv.URL, sample.New(false), client.Options{})
	ctx := context.Background()
	token, err := rc.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewTokenClient(srv.URL, token+"\n", rc.TeeKey(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tc.GetResource(ctx, "a/b/c")
	if err != nil || string(got) != "passport" {
		t.Fatalf("GetResource = %q, %v", got, err)
	}
	last := k.Requests()[len(k.Requests())-1]
	if last.Header.Get("Authorization") != "Bearer "+token || last.Cookie {
		t.Errorf("token request: Authorization %q, cookie %v", last.Header.Get("Authorization"), last.Cookie)
	}
	if _, err := tc.GetResource(ctx, "a/b/missing"); !errors.Is(err, client.ErrResourceNotFound) {
		t.Errorf("missing resource error = %v", err)
	}
	bad, err := client.NewTokenClient(srv.URL, "x.e30.y", rc.TeeKey(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := k.Counts().ResourceGets
	if _, err := bad.GetResource(ctx, "a/b/c"); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("unknown token error = %v", err)
	}
	if n := k.Counts(); n.ResourceGets != before+1 || n.Auth != 1 {
		t.Errorf("counts = %+v: the token client retried or attested", n)
	}
	if _, err := client.NewTokenClient(srv.URL, " ", rc.TeeKey(), client.Options{}); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := client.NewTokenClient(srv.URL, token, nil, client.Options{}); err == nil {
		t.Error("nil key accepted")
	}
}

func TestAdmin(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{AdminToken: "secret-admin"})
	ctx := context.Background()
	good, err := client.NewAdmin(srv.URL, " secret-admin\n", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := good.SetResource(ctx, "one/two/three", []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	last := k.Requests()[len(k.Requests())-1]
	if last.Method != "POST" || last.Header.Get("Content-Type") != "application/octet-stream" ||
		last.Header.Get("Authorization") != "Bearer secret-admin" || string(last.Body) != "\x00\x01\x02" {
		t.Errorf("set resource request = %+v", last)
	}
	if d, ok := k.Resource("one/two/three"); !ok || string(d) != "\x00\x01\x02" {
		t.Errorf("stored resource = %q, %v", d, ok)
	}
	if err := good.DeleteResource(ctx, "one/two/three"); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Resource("one/two/three"); ok {
		t.Error("resource not deleted")
	}
	if err := good.DeleteResource(ctx, "one/two/three"); err == nil {
		t.Error("deleting a missing resource succeeded")
	}

	if err := good.SetAttestationPolicy(ctx, "", "", []byte("package policy\n")); err != nil {
		t.Fatal(err)
	}
	last = k.Requests()[len(k.Requests())-1]
	if string(last.Body) != `{"type":"rego","policy_id":"default_cpu","policy":"cGFja2FnZSBwb2xpY3kK"}` {
		t.Errorf("attestation policy body = %s", last.Body)
	}
	if p, ok := k.AttestationPolicy("default_cpu"); !ok || string(p) != "package policy\n" {
		t.Errorf("stored policy = %q", p)
	}
	if err := good.SetAttestationPolicy(ctx, "gpu", "rego", []byte("p")); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.AttestationPolicy("gpu"); !ok {
		t.Error("policy id not honoured")
	}

	if ids, err := good.ListResourcePolicies(ctx); err != nil || len(ids) != 0 {
		t.Errorf("ListResourcePolicies = %v, %v", ids, err)
	}
	policy := []byte("package policy\ndefault allow = false\n")
	if err := good.SetResourcePolicy(ctx, policy); err != nil {
		t.Fatal(err)
	}
	if string(k.ResourcePolicy()) != string(policy) {
		t.Errorf("resource policy = %q", k.ResourcePolicy())
	}
	if ids, err := good.ListResourcePolicies(ctx); err != nil || len(ids) != 1 || ids[0] != "resource-policy" {
		t.Errorf("ListResourcePolicies = %v, %v", ids, err)
	}

	if err := good.SetSampleReferenceValue(ctx, "svn", []any{"1"}); err != nil {
		t.Fatal(err)
	}
	last = k.Requests()[len(k.Requests())-1]
	if string(last.Body) != `{"version":"0.1.0","type":"sample","payload":"eyJzdm4iOlsiMSJdfQ=="}` {
		t.Errorf("reference value body = %s", last.Body)
	}
	if v, err := good.GetReferenceValue(ctx, "svn"); err != nil || string(v) != `["1"]` {
		t.Errorf("GetReferenceValue = %s, %v", v, err)
	}
	if err := good.SetSampleReferenceValue(ctx, "rvps:///a/b:tag", 3); err != nil {
		t.Fatal(err)
	}
	if v, err := good.GetReferenceValue(ctx, "rvps:///a/b:tag"); err != nil || string(v) != `3` {
		t.Errorf("GetReferenceValue(slashed id) = %s, %v", v, err)
	}
	if _, err := good.GetReferenceValue(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "RVPS configuration failed") {
		t.Errorf("missing reference value error = %v", err)
	}
	if err := good.RegisterReferenceValue(ctx, []byte(`{"version":"0.2.0","type":"sample","payload":""}`)); err == nil ||
		!strings.Contains(err.Error(), "Version unmatched") {
		t.Errorf("bad version error = %v", err)
	}
	if err := good.RegisterReferenceValue(ctx, []byte(`{`)); err == nil {
		t.Error("invalid JSON accepted")
	}

	for _, token := range []string{"wrong", ""} {
		bad, err := client.NewAdmin(srv.URL, token, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		calls := map[string]func() error{
			"SetResource":          func() error { return bad.SetResource(ctx, "a/b/c", []byte("x")) },
			"DeleteResource":       func() error { return bad.DeleteResource(ctx, "a/b/c") },
			"SetAttestationPolicy": func() error { return bad.SetAttestationPolicy(ctx, "fake_policy_id", "rego", []byte("p")) },
			"SetResourcePolicy":    func() error { return bad.SetResourcePolicy(ctx, []byte("p")) },
			"ListResourcePolicies": func() error { _, err := bad.ListResourcePolicies(ctx); return err },
			"GetReferenceValue":    func() error { _, err := bad.GetReferenceValue(ctx, "svn"); return err },
			"SetSampleRV":          func() error { return bad.SetSampleReferenceValue(ctx, "x", "y") },
		}
		want := "Cannot verify token with any of the issuers"
		if token == "" {
			want = "Failed to parse HTTP Auth Bearer header"
		}
		for name, call := range calls {
			err := call()
			var serr *client.ServerError
			if !errors.As(err, &serr) || serr.Status != 401 || !strings.Contains(err.Error(), want) ||
				!strings.Contains(err.Error(), `Request Failed, Response: "`) {
				t.Errorf("token %q: %s error = %v", token, name, err)
			}
		}
	}
}

func TestAdminPathValidation(t *testing.T) {
	_, srv := newFake(t, kbstest.Config{})
	a, err := client.NewAdmin(srv.URL, "", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "/", "a/b?c", "a#b"} {
		if err := a.SetResource(context.Background(), p, []byte("x")); err == nil {
			t.Errorf("SetResource(%q) accepted", p)
		}
	}
	if _, err := a.GetReferenceValue(context.Background(), ""); err == nil {
		t.Error("empty reference value id accepted")
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		url  string
		opts client.Options
	}{
		{"ftp://h", client.Options{}},
		{"127.0.0.1:8080", client.Options{}},
		{"http://", client.Options{}},
		{"http://h/?q=1", client.Options{}},
		{"http://h", client.Options{HTTPClient: &http.Client{}, CertPEM: []byte("x")}},
		{"https://h", client.Options{CertPEM: []byte("not pem")}},
	}
	for _, tt := range tests {
		if _, err := client.NewAdmin(tt.url, "", tt.opts); err == nil {
			t.Errorf("NewAdmin(%q, %+v) accepted", tt.url, tt.opts)
		}
	}
	if _, err := client.NewRCAR("http://h", nil, client.Options{}); err == nil {
		t.Error("nil evidence provider accepted")
	}
}

func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect to another host was followed")
	}))
	defer other.Close()
	k := kbstest.New(kbstest.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("/away/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/kbs/v0/resource-policy", http.StatusFound)
	})
	mux.HandleFunc("/same/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/kbs/v0/resource-policy", http.StatusFound)
	})
	mux.Handle("/kbs/", k)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	away, _ := client.NewAdmin(srv.URL+"/away", "", client.Options{})
	if _, err := away.ListResourcePolicies(ctx); err == nil || !strings.Contains(err.Error(), "refusing redirect") {
		t.Errorf("cross-host redirect error = %v", err)
	}
	same, _ := client.NewAdmin(srv.URL+"/same", "", client.Options{})
	if _, err := same.ListResourcePolicies(ctx); err != nil {
		t.Errorf("same-host redirect: %v", err)
	}
}

func TestHTTPSWithCertPEM(t *testing.T) {
	k := kbstest.New(kbstest.Config{})
	k.SetResource("a/b/c", []byte("tls"))
	srv := httptest.NewTLSServer(k)
	defer srv.Close()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c := newRCAR(t, srv.URL, sample.New(false), client.Options{CertPEM: certPEM})
	if got, err := c.GetResource(context.Background(), "a/b/c"); err != nil || string(got) != "tls" {
		t.Fatalf("GetResource over TLS = %q, %v", got, err)
	}
	untrusted := newRCAR(t, srv.URL, sample.New(false), client.Options{})
	if _, err := untrusted.GetResource(context.Background(), "a/b/c"); err == nil {
		t.Error("untrusted certificate accepted")
	}
	// A caller-provided client is used as is (plus a cookie jar).
	viaClient := newRCAR(t, srv.URL, sample.New(false), client.Options{HTTPClient: srv.Client()})
	if _, err := viaClient.GetResource(context.Background(), "a/b/c"); err != nil {
		t.Fatalf("GetResource with HTTPClient: %v", err)
	}
}

func TestConcurrentGetResource(t *testing.T) {
	k, srv := newFake(t, kbstest.Config{})
	k.SetResource("a/b/c", []byte("v"))
	c := newRCAR(t, srv.URL, sample.New(false), client.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := c.GetResource(context.Background(), "a/b/c"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
