package ocsp

import (
	"context"
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/ocsp/ocsptest"
)

// TestWithOCSPTest runs the Checker against the exported fake responder
// (which other packages' end-to-end tests use).
func TestWithOCSPTest(t *testing.T) {
	pki := newTestPKI(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	sig, sigKey, err := ocsptest.NewDelegatedSigner(pki.inter.cert, pki.inter.key, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp := ocsptest.NewResponder(
		ocsptest.Issuer{Cert: pki.inter.cert, Key: pki.inter.key, Responder: sig, ResponderKey: sigKey},
		ocsptest.Issuer{Cert: pki.root.cert, Key: pki.root.key},
	)
	resp.Now = func() time.Time { return now }
	srv := httptest.NewServer(resp)
	defer srv.Close()
	c, err := New(Options{ResponderURL: srv.URL, HTTPClient: srv.Client(), Now: func() time.Time { return now }, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if s, d, err := c.CheckChain(ctx, pki.chain()); err != nil || s != StatusGood {
		t.Fatalf("good: %s %s %v", s, d, err)
	}
	resp.Revoke(pki.leaf.cert.SerialNumber, 6, now.Add(-time.Hour))
	if s, d, err := c.CheckChain(ctx, pki.chain()); err != nil || s != StatusRevoked || !strings.Contains(d, "certificate_hold") {
		t.Fatalf("revoked: %s %s %v", s, d, err)
	}
	resp.MarkUnknown(pki.inter.cert.SerialNumber)
	if s, _, err := c.CheckChain(ctx, pki.chain()[1:]); err == nil || s != StatusUnknown {
		t.Fatalf("unknown: %s %v", s, err)
	}
	// A certificate from an issuer the responder does not serve.
	if _, _, err := c.CheckChain(ctx, []*x509.Certificate{pki.otherResp.cert, pki.otherCA.cert}); err == nil {
		t.Fatal("foreign issuer accepted")
	}
	if resp.Requests() != 6 {
		t.Fatalf("%d requests", resp.Requests())
	}
}
