package snp

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/snp/kds"
)

// fakeCRL serves a CRL.
type fakeCRL struct {
	der []byte
	err error
	n   int
}

func (f *fakeCRL) CRL(_ context.Context, product string) ([]byte, error) {
	f.n++
	if product != "Turin" {
		return nil, fmt.Errorf("unexpected product %q", product)
	}
	return f.der, f.err
}

// synthCRL returns a CRL signed by signer (the synthetic ARK unless told
// otherwise) listing serials.
func synthCRL(t testing.TB, p *synthPKI, next time.Time, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: clock2025.Add(-time.Hour)})
	}
	b, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: clock2025.Add(-time.Hour), NextUpdate: next,
		RevokedCertificateEntries: entries, SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}, p.ark, p.arkKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCRL: a revoked ASK/ASVK rejects the report; a clean CRL gives
// crl_status "checked"; a CRL that cannot be had or trusted gives
// "unavailable" (with the reason) and does not fail verification.
func TestCRL(t *testing.T) {
	p := synth(t)
	chip := turinChipID()
	vcekKey, vcekDER := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: chip[:]})
	vlekKey, vlekDER := p.issueVEK(t, vekSpec{kind: KindVLEK, product: "Turin", tcb: turinTCB})
	spec := reportSpec{version: 3, family: 0x1A, model: 1, tcb: turinTCB, chipID: chip}
	vcekRaw := makeReport(t, spec, vcekKey)
	spec.signingKey = SigningKeyVLEK
	vlekRaw := makeReport(t, spec, vlekKey)

	next := clock2025.Add(24 * time.Hour)
	clean := synthCRL(t, p, next, big.NewInt(99))
	forged, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: clock2025, NextUpdate: clock2025.Add(time.Hour),
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}, p.ask, p.askKey)
	if err != nil {
		t.Fatal(err)
	}

	// An offline store holding the clean CRL (as PEM), behind a failing source.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "crl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crl", "Turin.crl"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: clean}), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()

	tests := []struct {
		name       string
		crl        CRLGetter
		vlek       bool
		wantErr    error
		wantStatus string
		wantReason string
	}{
		{name: "clean", crl: &fakeCRL{der: clean}, wantStatus: CRLChecked},
		{name: "clean, VLEK", crl: &fakeCRL{der: clean}, vlek: true, wantStatus: CRLChecked},
		{name: "ASK revoked", crl: &fakeCRL{der: synthCRL(t, p, next, big.NewInt(99), p.ask.SerialNumber)}, wantErr: ErrCertRevoked},
		{name: "ASVK revoked", crl: &fakeCRL{der: synthCRL(t, p, next, p.asvk.SerialNumber)}, vlek: true, wantErr: ErrCertRevoked},
		{name: "ASVK revoked, VCEK report", crl: &fakeCRL{der: synthCRL(t, p, next, p.asvk.SerialNumber)}, wantStatus: CRLChecked},
		{name: "past next update", crl: &fakeCRL{der: synthCRL(t, p, clock2025.Add(-time.Minute))}, wantStatus: CRLChecked, wantReason: "past its next update"},
		{name: "getter error", crl: &fakeCRL{err: errors.New("network is unreachable")}, wantStatus: CRLUnavailable, wantReason: "network is unreachable"},
		{name: "no CRL available", crl: &fakeCRL{}, wantStatus: CRLUnavailable, wantReason: "no CRL available"},
		{name: "not signed by ARK", crl: &fakeCRL{der: forged}, wantStatus: CRLUnavailable, wantReason: "not signed by"},
		{name: "garbage", crl: &fakeCRL{der: []byte("nope")}, wantStatus: CRLUnavailable, wantReason: "parse"},
		{name: "offline store after a failing source", crl: kds.CRLSources{&fakeCRL{err: errors.New("down")}, kds.NewOfflineStore(dir)}, wantStatus: CRLChecked},
		{name: "offline store without a CRL", crl: kds.CRLSources{kds.NewOfflineStore(emptyDir)}, wantStatus: CRLUnavailable, wantReason: "no CRL for Turin"},
		{name: "no CRL sources", crl: kds.CRLSources{}, wantStatus: CRLUnavailable, wantReason: "no CRL source"},
		{name: "no getter", crl: nil, wantStatus: CRLSkipped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, Options{Roots: map[Product][]byte{Turin: p.bundle}, CRL: tc.crl, Logger: slog.New(slog.DiscardHandler)})
			raw, der, typ := vcekRaw, vcekDER, "VCEK"
			certs := CertChain{VCEK: der}
			if tc.vlek {
				raw, der, typ = vlekRaw, vlekDER, "VLEK"
				certs = CertChain{VLEK: der}
			}
			r, err := ParseReport(raw)
			if err != nil {
				t.Fatal(err)
			}
			evidence := serdeJSON(t, r, []map[string]any{certEntry(typ, der)})
			for range 2 { // the second run uses the cached CRL
				res, err := v.Verify(context.Background(), evidence, verifier.Expected{})
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
					}
				} else {
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					c := res[0].Claims
					if c["crl_status"] != tc.wantStatus {
						t.Errorf("crl_status %v, want %v", c["crl_status"], tc.wantStatus)
					}
					reason, _ := c["crl_status_reason"].(string)
					if tc.wantReason == "" && reason != "" || !strings.Contains(reason, tc.wantReason) {
						t.Errorf("crl_status_reason %q, want %q", reason, tc.wantReason)
					}
				}
				if _, err := v.VerifyReport(context.Background(), raw, certs); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Fatalf("VerifyReport: %v, want %v", err, tc.wantErr)
				}
			}
			if f, ok := tc.crl.(*fakeCRL); ok && f.n != 4 {
				t.Fatalf("getter called %d times, want 4", f.n)
			}
		})
	}
}

// A canceled context is an error, not an unavailable CRL.
func TestCRLContextCanceled(t *testing.T) {
	p := synth(t)
	chip := turinChipID()
	key, der := p.issueVEK(t, vekSpec{kind: KindVCEK, product: "Turin", tcb: turinTCB, hwid: chip[:]})
	raw := makeReport(t, reportSpec{version: 3, family: 0x1A, model: 1, tcb: turinTCB, chipID: chip}, key)
	ctx, cancel := context.WithCancel(context.Background())
	getter := crlFunc(func(context.Context, string) ([]byte, error) {
		cancel()
		return nil, context.Canceled
	})
	v := newVerifier(t, Options{Roots: map[Product][]byte{Turin: p.bundle}, CRL: getter, Logger: slog.New(slog.DiscardHandler)})
	if _, err := v.VerifyReport(ctx, raw, CertChain{VCEK: der}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

type crlFunc func(ctx context.Context, product string) ([]byte, error)

func (f crlFunc) CRL(ctx context.Context, product string) ([]byte, error) { return f(ctx, product) }

// TestChipIDClaim: chip_id is the hex of the report's 64-byte CHIP_ID, as
// in the real Genoa vector (= its VCEK hwID).
func TestChipIDClaim(t *testing.T) {
	const want = "371c55d6d15cb50f16dc31d39a24e300caaabff4431e841111429b73ec45ad67ea6e687ffae7bf84b54a5d0e6d79b3ef6ff0bd8b4cff94c2163af5c5de8718e8"
	v := newVerifier(t, Options{})
	res, err := v.Verify(context.Background(), readTestdata(t, "e2e-evidence-genoa.json"), verifier.Expected{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Claims["chip_id"]; got != want {
		t.Fatalf("chip_id %v, want %s", got, want)
	}
	// The Milan v2 vector: chip_id c38427a3…e477524e.
	r := mustParse(t, readTestdata(t, "test-report.bin"))
	got, _ := r.Claims()["chip_id"].(string)
	if b, err := hex.DecodeString(got); err != nil || len(b) != 64 || !strings.HasPrefix(got, "c38427a3") || !strings.HasSuffix(got, "e477524e") {
		t.Fatalf("Milan chip_id %q", got)
	}
}
