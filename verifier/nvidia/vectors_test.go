package nvidia

import (
	"context"
	"errors"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
)

// realCase is one real report/chain pairing and what a correct verifier
// concludes about it (testdata/README.md).
type realCase struct {
	name, arch    string
	report, chain string
	nonce         string // expected report data (hex); "" = not checked
	wantErrs      []error
	fwid          string // expected ClaimFWID
	class         string
	claims        map[string]any
}

var realCases = []realCase{
	{
		name: "trustee hopper case1", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		nonce: trusteeNonce, fwid: "match", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-driver-version": "550.90.07"},
	},
	{
		name: "trustee case2 root only", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case2.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrCertChain, ErrChainLength}, fwid: "not-checked", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-attestation-report-signature-verified": false},
	},
	{
		name: "trustee case3 missing ICA", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case3.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrCertChain}, fwid: "not-checked", class: "gpu",
	},
	{
		name: "trustee case4 missing leaf", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case4.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrCertChain, ErrChainLength}, fwid: "not-checked", class: "gpu",
		// BROM's key does not verify the report either.
		claims: map[string]any{"x-nvidia-gpu-attestation-report-signature-verified": false},
	},
	{
		name: "trustee report wrong nonce", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		nonce: "27a328247bf7935c993341cf587be6f05986ccce4fe7ba2c54100bd616a58f66", wantErrs: []error{ErrNonceMismatch}, fwid: "match", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-attestation-report-nonce-match": false, ClaimNonce: "mismatch"},
	},
	{
		name: "trustee report no expected nonce", arch: "HOPPER", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		fwid: "match", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-attestation-report-nonce-match": nil, ClaimNonce: "not-checked"},
	},
	{
		name: "trustee report declared blackwell", arch: "BLACKWELL", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrArchMismatch, ErrFWID}, fwid: "missing-cert-fwid", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-arch-check": false},
	},
	{
		// The same report declared as a switch must not pass as one.
		name: "trustee report declared LS10", arch: "LS10", report: "hopperAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrArchMismatch}, fwid: "match", class: "switch",
		claims: map[string]any{"x-nvidia-switch-arch-check": false, "measres": "not-checked"},
	},
	{
		name: "nvat hopper without FWID", arch: "HOPPER", report: "gpu/hopperAttestationReport.txt", chain: "gpu/hopperCertChain.txt",
		nonce: "27a328247bf7935c993341cf587be6f05986ccce4fe7ba2c54100bd616a58f66", fwid: "skipped-no-report-fwid", class: "gpu",
		claims: map[string]any{
			"x-nvidia-gpu-driver-version": "535.86.09", "x-nvidia-gpu-vbios-version": "96.00.5E.00.01",
			"x-nvidia-gpu-attestation-report-cert-chain-fwid-match": true,
		},
	},
	{
		name: "nvat hopper zero nonce", arch: "HOPPER", report: "gpu/hopperAttestationReport.txt", chain: "gpu/hopperCertChain.txt",
		nonce: "00", wantErrs: []error{ErrNonceMismatch}, fwid: "skipped-no-report-fwid", class: "gpu",
	},
	{
		name: "nvat hopper expired-RIM report", arch: "HOPPER", report: "gpu/hopperAttestationReportExpired.txt", chain: "gpu/hopperCertChainExpired.txt",
		nonce: trusteeNonce, fwid: "match", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-driver-version": "570.124.03", "x-nvidia-gpu-vbios-version": "96.00.5E.00.04"},
	},
	{
		name: "nvat invalid signature vs expired chain", arch: "HOPPER", report: "gpu/hopperAttestationReportInvalidSignature.txt", chain: "gpu/hopperCertChainExpired.txt",
		wantErrs: []error{ErrSignature, ErrFWID}, fwid: "mismatch", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-attestation-report-parsed": true, "x-nvidia-gpu-attestation-report-signature-verified": false},
	},
	{
		name: "nvat invalid signature vs hopper chain", arch: "HOPPER", report: "gpu/hopperAttestationReportInvalidSignature.txt", chain: "gpu/hopperCertChain.txt",
		wantErrs: []error{ErrSignature}, class: "gpu",
	},
	{
		name: "nvat invalid signature vs trustee chain", arch: "HOPPER", report: "gpu/hopperAttestationReportInvalidSignature.txt", chain: "hopper_cert_chain_case1.txt",
		wantErrs: []error{ErrSignature}, class: "gpu",
	},
	{
		name: "nvat invalid signature vs blackwell chain", arch: "HOPPER", report: "gpu/hopperAttestationReportInvalidSignature.txt", chain: "gpu/blackwellCertChain.txt",
		wantErrs: []error{ErrSignature}, class: "gpu",
	},
	{
		name: "nvat blackwell", arch: "BLACKWELL", report: "gpu/blackwellAttestationReport.txt", chain: "gpu/blackwellCertChain.txt",
		nonce: trusteeNonce, fwid: "match", class: "gpu",
		claims: map[string]any{
			"arch": "Blackwell", "x-nvidia-gpu-driver-version": "575.32", "x-nvidia-gpu-vbios-version": "97.00.88.00.0F",
			"hwmodel": "GB100 A01 GSP BROM", "x-nvidia-gpu-arch-check": true,
		},
	},
	{
		name: "nvat blackwell declared hopper", arch: "HOPPER", report: "gpu/blackwellAttestationReport.txt", chain: "gpu/blackwellCertChain.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrArchMismatch, ErrFWID}, fwid: "missing-cert-fwid", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-arch-check": false},
	},
	{
		name: "nvat blackwell declared LS10", arch: "LS10", report: "gpu/blackwellAttestationReport.txt", chain: "gpu/blackwellCertChain.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrArchMismatch}, class: "switch",
		claims: map[string]any{"x-nvidia-switch-arch-check": false},
	},
	{
		name: "nvat parse-golden hopper", arch: "HOPPER", report: "gpu/parse-golden/hopperAttestationReport.txt", chain: "gpu/parse-golden/hopperCertChain.txt",
		nonce: "5bb22e377702d4e1e8215a903ba094826b9ac7f731dee1fe8102958bf2840aca", fwid: "match", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-driver-version": "580.159.03", "x-nvidia-gpu-vbios-version": "96.00.74.00.20"},
	},
	{
		name: "nvat switch", arch: "LS10", report: "switch/switchAttestationReport.txt", chain: "switch/switchCertChain.txt",
		nonce: trusteeNonce, fwid: "skipped-no-report-fwid", class: "switch",
		claims: map[string]any{
			"arch": "LS10", "x-nvidia-switch-bios-version": "96.10.55.00.01", "hwmodel": "LS_10 A01 FSP BROM",
			"ueid": "694931143880983876767046803400974855445978836716", "x-nvidia-switch-arch-check": true,
			"x-nvidia-switch-pdi": "203EB31AD9ED0008", "x-nvidia-device-type": "nvswitch",
			"x-nvidia-switch-attestation-report-signature-verified":    true,
			"x-nvidia-switch-attestation-report-cert-chain-fwid-match": true,
		},
	},
	{
		name: "nvat switch invalid signature", arch: "LS10", report: "switch/switchAttestationReportInvalidSignature.txt", chain: "switch/switchCertChain.txt",
		wantErrs: []error{ErrSignature}, fwid: "skipped-no-report-fwid", class: "switch",
		claims: map[string]any{"x-nvidia-switch-attestation-report-signature-verified": false},
	},
	{
		name: "switch report with hopper chain", arch: "LS10", report: "switch/switchAttestationReport.txt", chain: "hopper_cert_chain_case1.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrSignature, ErrArchMismatch}, class: "switch",
		claims: map[string]any{"x-nvidia-switch-arch-check": false},
	},
	{
		name: "nvat switch declared hopper", arch: "HOPPER", report: "switch/switchAttestationReport.txt", chain: "switch/switchCertChain.txt",
		nonce: trusteeNonce, wantErrs: []error{ErrArchMismatch}, fwid: "skipped-no-report-fwid", class: "gpu",
		claims: map[string]any{"x-nvidia-gpu-arch-check": false},
	},
}

func TestRealVectors(t *testing.T) {
	v := newVerifier(t, Options{})
	for _, tc := range realCases {
		t.Run(tc.name, func(t *testing.T) {
			d := device(tc.arch, "u", readReport(t, tc.report), readFile(t, tc.chain))
			var exp verifier.Expected
			if tc.nonce != "" {
				exp.ReportData = mustHex(t, tc.nonce)
			}
			res, err := v.VerifyDevice(context.Background(), d, exp)
			if len(tc.wantErrs) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, w := range tc.wantErrs {
				if !errors.Is(err, w) {
					t.Errorf("error %v, want %v", err, w)
				}
			}
			if res.Class != tc.class {
				t.Errorf("class = %q, want %q", res.Class, tc.class)
			}
			c := res.Claims
			p := Arch(tc.arch).claimPrefix()
			genuine := len(tc.wantErrs) == 0
			_, hasErrs := c[ClaimErrors]
			if hasErrs == genuine {
				t.Errorf("%s present = %v, genuine = %v (%v)", ClaimErrors, hasErrs, genuine, c[ClaimErrors])
			}
			if tc.fwid != "" && c[ClaimFWID] != tc.fwid {
				t.Errorf("%s = %v, want %s", ClaimFWID, c[ClaimFWID], tc.fwid)
			}
			if genuine {
				for _, k := range []string{"attestation-report-parsed", "attestation-report-signature-verified", "attestation-report-cert-chain-fwid-match", "arch-check"} {
					if c[p+k] != true {
						t.Errorf("%s = %v, want true", p+k, c[p+k])
					}
				}
			}
			for k, w := range tc.claims {
				if c[k] != w {
					t.Errorf("%s = %#v, want %#v", k, c[k], w)
				}
			}
			// Strict mode: Verify fails exactly when the device is not genuine.
			sv := newVerifier(t, Options{FailOnInvalidDevice: true})
			_, serr := sv.Verify(context.Background(), evidenceJSON(t, d), exp)
			if (serr == nil) != genuine {
				t.Errorf("strict Verify error = %v, genuine = %v", serr, genuine)
			}
			for _, w := range tc.wantErrs {
				if !errors.Is(serr, w) {
					t.Errorf("strict error %v, want %v", serr, w)
				}
			}
		})
	}
}
