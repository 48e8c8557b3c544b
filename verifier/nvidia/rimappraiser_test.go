package nvidia_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
	"github.com/sigil-attestation/sigil/verifier/nvidia/rim/rimtest"
)

// mapFetcher serves RIMs from memory.
type mapFetcher map[string][]byte

func (m mapFetcher) Fetch(_ context.Context, id string) (*rim.Document, error) {
	doc, ok := m[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", rim.ErrNotFound, id)
	}
	return &rim.Document{ID: id, XML: doc}, nil
}

type fixedRevocation struct{ status, detail string }

func (f fixedRevocation) CheckChain(context.Context, []*x509.Certificate) (string, string, error) {
	return f.status, f.detail, nil
}

// goldens returns RIM measurements for SPDM blocks first..last (RIM index =
// block − 1) taken from the synthetic device's default measurements.
func goldens(first, last int) []rim.Measurement {
	var out []rim.Measurement
	for b := first; b <= last; b++ {
		out = append(out, rim.Measurement{Index: b - 1, Active: true, Name: fmt.Sprintf("m%d", b), Size: 48,
			Alternatives: []string{hex.EncodeToString(nvidiatest.DefaultMeasurement(b))}})
	}
	return out
}

func TestRIMAppraiser(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	h, err := nvidiatest.NewHierarchy(now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := h.NewDevice(nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pki, err := rimtest.NewPKI(rimtest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rimtest.NewPKI(rimtest.PKIOptions{})
	rimVerifier, err := rim.NewVerifier(rim.VerifierOptions{Roots: []*x509.Certificate{pki.Root}})
	if err != nil {
		t.Fatal(err)
	}
	driverID, _ := rim.HopperDriverID("550.90.07")
	vbiosID, _ := rim.VBIOSID("1010", "0200", "882", "96.00.9F.00.01")
	sign := func(p *rimtest.PKI, version string, m []rim.Measurement) []byte {
		doc, err := p.Sign(rimtest.Spec{ColloquialVersion: version, Measurements: m})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	goodDriver := sign(pki, "550.90.07", goldens(1, 10))
	goodVBIOS := sign(pki, "96.00.9F.00.01", goldens(11, 20))
	badGolden := goldens(11, 20)
	badGolden[3].Alternatives = []string{hex.EncodeToString(make([]byte, 48))}

	nonce := make([]byte, 32)
	report, err := dev.Report(nvidiatest.ReportOptions{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	evidence := nvidiatest.EvidenceJSON(dev.Entry("GPU-0", report))

	const notCompared, noMatch = "measurements not compared", "not match the reference values"
	cases := []struct {
		name       string
		rims       mapFetcher
		revocation nvidia.RevocationChecker
		measres    string
		// reason must contain each of these; never the others.
		reason []string
	}{
		{"all measurements match", mapFetcher{driverID: goodDriver, vbiosID: goodVBIOS}, nil, "success", nil},
		{"golden mismatch", mapFetcher{driverID: goodDriver, vbiosID: sign(pki, "96.00.9F.00.01", badGolden)}, nil, "fail", []string{"1 measurement does " + noMatch, "RIM indices 13"}},
		{"RIM from an untrusted signer", mapFetcher{driverID: goodDriver, vbiosID: sign(other, "96.00.9F.00.01", goldens(11, 20))}, nil, "fail", []string{notCompared, "VBIOS RIM " + vbiosID, "signing chain"}},
		{"RIM for another version", mapFetcher{driverID: sign(pki, "550.90.08", goldens(1, 10)), vbiosID: goodVBIOS}, nil, "fail", []string{notCompared, "driver RIM " + driverID, "550.90.08"}},
		{"driver RIM missing", mapFetcher{vbiosID: goodVBIOS}, nil, "fail", []string{notCompared, "driver RIM " + driverID, "not found"}},
		{"both RIMs missing", mapFetcher{}, nil, "fail", []string{notCompared, "driver RIM " + driverID, "VBIOS RIM " + vbiosID}},
		{"conflicting indices", mapFetcher{driverID: goodDriver, vbiosID: sign(pki, "96.00.9F.00.01", goldens(5, 20))}, nil, "fail", []string{notCompared, "same measurement index"}},
		{"no active measurement", mapFetcher{driverID: sign(pki, "550.90.07", nil), vbiosID: sign(pki, "96.00.9F.00.01", nil)}, nil, "fail", []string{notCompared, "no active measurement"}},
		{"RIM signer revoked", mapFetcher{driverID: goodDriver, vbiosID: goodVBIOS}, fixedRevocation{"revoked", "key_compromise"}, "fail", []string{notCompared, "revoked", "key_compromise"}},
		{"RIM signer OCSP good", mapFetcher{driverID: goodDriver, vbiosID: goodVBIOS}, fixedRevocation{"good", ""}, "success", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ap, err := nvidia.NewRIMAppraiser(nvidia.RIMAppraiserOptions{Fetcher: c.rims, Verifier: rimVerifier, Revocation: c.revocation})
			if err != nil {
				t.Fatal(err)
			}
			v, err := nvidia.New(nvidia.Options{Roots: []*x509.Certificate{h.Root}, Appraiser: ap})
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Verify(ctx, evidence, verifier.Expected{ReportData: nonce})
			if err != nil {
				t.Fatal(err)
			}
			if got := res[0].Claims["measres"]; got != c.measres {
				t.Fatalf("measres %v, want %s (claims %v)", got, c.measres, res[0].Claims[nvidia.ClaimMeasresReason])
			}
			reason, _ := res[0].Claims[nvidia.ClaimMeasresReason].(string)
			if c.reason == nil && reason != "" {
				t.Errorf("reason %q for measres %s", reason, c.measres)
			}
			for _, want := range c.reason {
				if !strings.Contains(reason, want) {
					t.Errorf("reason %q lacks %q", reason, want)
				}
			}
			// Saying "do not match" is only right when something was compared.
			if strings.Contains(reason, notCompared) == strings.Contains(reason, noMatch) && reason != "" {
				t.Errorf("reason %q must say either compared-and-different or not compared", reason)
			}
		})
	}
}
