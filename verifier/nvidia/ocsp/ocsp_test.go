package ocsp

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type env struct {
	pki  *testPKI
	fake *fakeResponder
	srv  *httptest.Server
	now  time.Time
}

func newEnv(t *testing.T) *env {
	e := &env{pki: newTestPKI(t), now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	e.fake = &fakeResponder{t: t, pki: e.pki, now: func() time.Time { return e.now }}
	e.srv = httptest.NewServer(e.fake)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) checker(t *testing.T, mod func(*Options)) *Checker {
	opts := Options{ResponderURL: e.srv.URL, HTTPClient: e.srv.Client(), Now: func() time.Time { return e.now }}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckChainGood(t *testing.T) {
	e := newEnv(t)
	for _, h := range []crypto.Hash{0, crypto.SHA384, crypto.SHA256, crypto.SHA1} {
		want := h
		if want == 0 {
			want = crypto.SHA384
		}
		for _, mode := range []fakeMode{
			{wantHash: want},
			{wantHash: want, signer: "issuer"},
			{wantHash: want, byKey: true},
			{wantHash: want, nonce: "raw"},
			{wantHash: want, noNext: true},
		} {
			e.fake.setMode(mode)
			c := e.checker(t, func(o *Options) { o.Hash = h })
			status, detail, err := c.CheckChain(context.Background(), e.pki.chain())
			if err != nil || status != StatusGood {
				t.Fatalf("hash %v mode %+v: %s %s %v", want, mode, status, detail, err)
			}
			rs, err := c.Check(context.Background(), e.pki.chain())
			if err != nil || len(rs) != 2 {
				t.Fatalf("%v %d", err, len(rs))
			}
			for _, r := range rs {
				if !r.NonceMatched || !r.ResponseValid || r.Status != StatusGood || r.ThisUpdate.IsZero() {
					t.Fatalf("result %+v", r)
				}
			}
		}
	}
}

func TestCheckChainRevokedHold(t *testing.T) {
	e := newEnv(t)
	e.fake.setMode(fakeMode{status: "revoked", reason: 6})
	c := e.checker(t, nil)
	status, detail, err := c.CheckChain(context.Background(), e.pki.chain())
	if err != nil || status != StatusRevoked || !strings.Contains(detail, "certificate_hold") {
		t.Fatalf("%s %q %v", status, detail, err)
	}
	rs, err := c.Check(context.Background(), e.pki.chain())
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].RevocationReason != "certificate_hold" || rs[0].RevokedAt.IsZero() || rs[0].Subject != "Test HCC RIM L4 Signer" {
		t.Fatalf("%+v", rs[0])
	}
	// A revocation without a reason.
	e.fake.setMode(fakeMode{status: "revoked", reason: -1})
	rs, err = e.checker(t, nil).Check(context.Background(), e.pki.chain())
	if err != nil || rs[0].Status != StatusRevoked || rs[0].RevocationReason != "" {
		t.Fatalf("%+v %v", rs, err)
	}
}

func TestCheckFailures(t *testing.T) {
	tests := []struct {
		name string
		mode fakeMode
		want error
	}{
		{"unknown", fakeMode{status: "unknown"}, ErrUnknownStatus},
		{"wrong nonce", fakeMode{nonce: "wrong"}, ErrNonceMismatch},
		{"no nonce", fakeMode{nonce: "none"}, ErrNonceMismatch},
		{"expired", fakeMode{thisUpdate: -48 * time.Hour, nextUpdate: -24 * time.Hour}, ErrStale},
		{"future thisUpdate", fakeMode{thisUpdate: time.Hour}, ErrStale},
		{"bad signature", fakeMode{badSig: true}, ErrBadSignature},
		{"bad signature by issuer", fakeMode{badSig: true, signer: "issuer"}, ErrBadSignature},
		{"unauthorized responder", fakeMode{signer: "unrelated"}, ErrUnauthorizedResponder},
		{"unauthorized responder by key", fakeMode{signer: "unrelated", byKey: true}, ErrUnauthorizedResponder},
		{"responder without EKU", fakeMode{signer: "noeku"}, ErrUnauthorizedResponder},
		{"expired responder", fakeMode{signer: "expired"}, ErrUnauthorizedResponder},
		{"other serial", fakeMode{otherSerial: true}, ErrCertIDMismatch},
		{"tryLater", fakeMode{respStatus: 3}, ErrResponseStatus},
		{"unauthorized status", fakeMode{respStatus: 6}, ErrResponseStatus},
		{"HTTP 500", fakeMode{httpStatus: http.StatusInternalServerError}, ErrUnreachable},
		{"garbage", fakeMode{garbage: true}, ErrMalformedResponse},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.setMode(tc.mode)
			// Strict: an error wrapping the sentinel.
			status, _, err := e.checker(t, nil).CheckChain(context.Background(), e.pki.chain())
			if !errors.Is(err, tc.want) || status != StatusUnknown {
				t.Fatalf("strict: %s %v, want %v", status, err, tc.want)
			}
			// Lenient: "unknown" with the reason, no error.
			c := e.checker(t, func(o *Options) { o.Lenient = true })
			status, detail, err := c.CheckChain(context.Background(), e.pki.chain())
			if err != nil || status != StatusUnknown || detail == "" {
				t.Fatalf("lenient: %s %q %v", status, detail, err)
			}
			rs, err := c.Check(context.Background(), e.pki.chain())
			if err != nil || len(rs) != 2 || !errors.Is(rs[0].Err, tc.want) || rs[0].Status != StatusUnknown {
				t.Fatalf("lenient results: %+v %v", rs, err)
			}
		})
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t)
	e.fake.setMode(fakeMode{nextUpdate: 2 * time.Hour})
	c := e.checker(t, nil)
	ctx := context.Background()
	if s, _, err := c.CheckChain(ctx, e.pki.chain()); err != nil || s != StatusGood {
		t.Fatal(s, err)
	}
	if n := e.fake.requests.Load(); n != 2 {
		t.Fatalf("%d requests", n)
	}
	rs, err := c.Check(ctx, e.pki.chain())
	if err != nil || !rs[0].Cached || !rs[1].Cached {
		t.Fatalf("not cached: %+v %v", rs, err)
	}
	if n := e.fake.requests.Load(); n != 2 {
		t.Fatalf("%d requests after cached check", n)
	}
	// Past nextUpdate the responder is asked again.
	e.now = e.now.Add(3 * time.Hour)
	if _, _, err := c.CheckChain(ctx, e.pki.chain()); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.requests.Load(); n != 4 {
		t.Fatalf("%d requests after nextUpdate", n)
	}
	// Unknown answers and responses without nextUpdate are not cached.
	for _, m := range []fakeMode{{status: "unknown"}, {noNext: true}} {
		e.fake.setMode(m)
		c2 := e.checker(t, func(o *Options) { o.Lenient = true })
		before := e.fake.requests.Load()
		_, _, _ = c2.CheckChain(ctx, e.pki.chain())
		_, _, _ = c2.CheckChain(ctx, e.pki.chain())
		if n := e.fake.requests.Load() - before; n != 4 {
			t.Fatalf("mode %+v: %d requests, want 4", m, n)
		}
	}
	// DisableCache.
	e.fake.setMode(fakeMode{})
	c3 := e.checker(t, func(o *Options) { o.DisableCache = true })
	before := e.fake.requests.Load()
	_, _, _ = c3.CheckChain(ctx, e.pki.chain())
	_, _, _ = c3.CheckChain(ctx, e.pki.chain())
	if n := e.fake.requests.Load() - before; n != 4 {
		t.Fatalf("DisableCache: %d requests", n)
	}
}

func TestUnreachable(t *testing.T) {
	pki := newTestPKI(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	mk := func(lenient bool) *Checker {
		c, err := New(Options{ResponderURL: url, Lenient: lenient, HTTPClient: &http.Client{Timeout: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	status, _, err := mk(false).CheckChain(context.Background(), pki.chain())
	if !errors.Is(err, ErrUnreachable) || status != StatusUnknown {
		t.Fatalf("strict: %s %v", status, err)
	}
	status, detail, err := mk(true).CheckChain(context.Background(), pki.chain())
	if err != nil || status != StatusUnknown || !strings.Contains(detail, "unreachable") {
		t.Fatalf("lenient: %s %q %v", status, detail, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := newEnv(t)
	if _, _, err := e.checker(t, nil).CheckChain(ctx, e.pki.chain()); !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestChainValidation(t *testing.T) {
	e := newEnv(t)
	c := e.checker(t, nil)
	for name, chain := range map[string][]*x509.Certificate{
		"empty":       nil,
		"root only":   {e.pki.root.cert},
		"wrong order": {e.pki.inter.cert, e.pki.leaf.cert, e.pki.root.cert},
		"nil":         {e.pki.leaf.cert, nil},
	} {
		if _, _, err := c.CheckChain(context.Background(), chain); !errors.Is(err, ErrChain) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if e.fake.requests.Load() != 0 {
		t.Fatal("requests sent for invalid chains")
	}
	// Skipping the device leaf: chain[1:] checks only the intermediate.
	rs, err := c.Check(context.Background(), e.pki.chain()[1:])
	if err != nil || len(rs) != 1 || rs[0].Subject != "Test GH100 Identity" {
		t.Fatalf("%+v %v", rs, err)
	}
	r, err := c.CheckCertificate(context.Background(), e.pki.leaf.cert, e.pki.inter.cert)
	if err != nil || r.Status != StatusGood {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestNewValidation(t *testing.T) {
	for _, o := range []Options{{ResponderURL: "ftp://x"}, {Hash: crypto.MD5}, {Hash: crypto.SHA512}} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	c, err := New(Options{})
	if err != nil || c.url != DefaultResponderURL || c.hash != crypto.SHA384 {
		t.Fatalf("defaults: %v", err)
	}
}

func TestReasonString(t *testing.T) {
	for code, want := range map[int]string{-1: "", 0: "unspecified", 1: "key_compromise", 6: "certificate_hold", 10: "aa_compromise", 7: "reason_7"} {
		if got := ReasonString(code); got != want {
			t.Errorf("%d: %q", code, got)
		}
	}
}

func BenchmarkCheckChainCached(b *testing.B) {
	pki := newTestPKI(b)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeResponder{t: b, pki: pki, now: func() time.Time { return now }}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, err := New(Options{ResponderURL: srv.URL, HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := c.CheckChain(context.Background(), pki.chain()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	pki := newTestPKI(b)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeResponder{t: b, pki: pki, now: func() time.Time { return now }}
	c, err := New(Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	id, err := newCertID(pki.leaf.cert, pki.inter.cert, crypto.SHA384)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, 32)
	_, nv, _ := marshalRequest(id, nonce)
	der := fake.build(fakeMode{}, fakeCertID(id), pki.inter, pki.interResp, &pkix.Extension{Id: oidNonce, Value: nv})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.evaluate(der, id, pki.inter.cert, nonce, nv, now); err != nil {
			b.Fatal(err)
		}
	}
}
