package rimtest

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
)

func TestSignedRIMVerifies(t *testing.T) {
	pki, err := NewPKI(PKIOptions{
		SignerNotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		SignerNotAfter:  time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{ColloquialVersion: "550.90.07", Edition: "driver", Measurements: []rim.Measurement{
		{Index: 0, Active: true, Size: 48, Alternatives: []string{Digest("a")}},
		{Index: 1, Active: false, Size: 48, Alternatives: []string{Digest("b"), Digest("c")}},
		{Index: 2, Active: true, Size: 48, Alternatives: []string{Digest("d"), Digest("e")}},
	}}
	doc, err := pki.Sign(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rim.NewVerifier(rim.VerifierOptions{Roots: []*x509.Certificate{pki.Root}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, chain, err := v.Verify(doc, at)
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.ColloquialVersion != "550.90.07" || len(m.Active()) != 2 || len(chain) != 4 || m.Meta.FirmwareManufacturerID != "5703" {
		t.Fatalf("manifest %+v chain %d", m.Meta, len(chain))
	}
	if got := m.Measurements[2].Alternatives; len(got) != 2 || got[1] != Digest("e") {
		t.Fatalf("alternatives %v", got)
	}
	if _, _, err := v.Verify(doc, time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, rim.ErrCertExpired) {
		t.Fatalf("expired signer: %v", err)
	}
	// The production verifier must reject the test hierarchy.
	prod, err := rim.NewVerifier(rim.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := prod.Verify(doc, at); !errors.Is(err, rim.ErrCertChain) {
		t.Fatalf("test RIM under production root: %v", err)
	}
	// A document signed by another PKI's key fails the signature check.
	other, err := NewPKI(PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := SignDocument(Unsigned(spec, pki.Chain), other.SignerKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(forged, at); !errors.Is(err, rim.ErrInvalidSignature) {
		t.Fatalf("forged: %v", err)
	}
}

func TestServiceWithClient(t *testing.T) {
	pki, err := NewPKI(PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := pki.Sign(Spec{ColloquialVersion: "96.00.9F.00.01", Measurements: []rim.Measurement{
		{Index: 0, Active: true, Size: 48, Alternatives: []string{Digest("x")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rim.VBIOSID("1010", "0200", "882", "96.00.9f.00.01")
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(map[string][]byte{id: doc})
	svc.Key = "k"
	srv := httptest.NewServer(svc)
	defer srv.Close()
	c, err := rim.NewClient(rim.ClientOptions{BaseURL: srv.URL, ServiceKey: "k", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Fetch(context.Background(), id)
	if err != nil || string(got.XML) != string(doc) {
		t.Fatalf("fetch: %v", err)
	}
	if _, err := c.Fetch(context.Background(), "NV_GPU_VBIOS_X"); !errors.Is(err, rim.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	v, _ := rim.NewVerifier(rim.VerifierOptions{Roots: []*x509.Certificate{pki.Root}})
	if _, _, err := v.Verify(got.XML, time.Now()); err != nil {
		t.Fatal(err)
	}
	if svc.Requests() != 2 {
		t.Fatalf("%d requests", svc.Requests())
	}
}
