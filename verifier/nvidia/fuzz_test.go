package nvidia

import (
	"context"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

var reportSeeds = []string{
	"hopperAttestationReport.txt",
	"gpu/blackwellAttestationReport.txt",
	"gpu/hopperAttestationReport.txt",
	"gpu/hopperAttestationReportInvalidSignature.txt",
	"switch/switchAttestationReport.txt",
}

func FuzzParseReport(f *testing.F) {
	for _, s := range reportSeeds {
		f.Add(readReport(f, s))
	}
	h := newHierarchy(f)
	d := newDevice(f, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	f.Add(newReport(f, d, nvidiatest.ReportOptions{Blocks: 2, Trailing: []byte{0}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseReport(raw)
		if err != nil {
			if r != nil {
				t.Fatal("report returned with an error")
			}
			return
		}
		if r.SignedLen+SignatureSize+r.Trailing != len(raw) {
			t.Fatalf("signed %d + sig + trailing %d != %d", r.SignedLen, r.Trailing, len(raw))
		}
		if len(r.Response.Signature) != SignatureSize {
			t.Fatal("signature size")
		}
		for _, sw := range []bool{false, true} {
			_, _ = configClaims(r.Response.Fields, sw)
		}
		_ = r.Measurements()
	})
}

func FuzzParseEvidence(f *testing.F) {
	f.Add(evidenceJSON(f, device("HOPPER", trusteeUUID, readReport(f, "hopperAttestationReport.txt"), readFile(f, "hopper_cert_chain_case1.txt"))))
	f.Add(evidenceJSON(f, device("LS10", "", readReport(f, "switch/switchAttestationReport.txt"), readFile(f, "switch/switchCertChain.txt"))))
	f.Add([]byte(`{"device_evidence_list":[{"arch":"BLACKWELL","evidence":"00","certificate":""}]}`))
	f.Add([]byte(`{"device_evidence_list":null}`))
	v := newVerifier(f, Options{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEvidence(data)
		if err != nil {
			return
		}
		if len(ev.Devices) == 0 {
			t.Fatal("no devices accepted")
		}
		for _, d := range ev.Devices {
			if _, err := ParseArch(d.Arch); err != nil {
				t.Fatal(err)
			}
		}
		// Full verification must not panic on anything ParseEvidence accepts.
		res, err := v.Verify(context.Background(), data, verifier.Expected{ReportData: []byte{1}})
		if err != nil {
			t.Fatal(err) // non-strict: only evidence-level errors
		}
		if len(res) != len(ev.Devices) {
			t.Fatal("result count")
		}
	})
}
