package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/internal/app"
	"github.com/sigil-attestation/sigil/internal/tpm2"
	"github.com/sigil-attestation/sigil/rvps"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
	"github.com/sigil-attestation/sigil/verifier/snp"
	"github.com/sigil-attestation/sigil/verifier/tdx"
	"github.com/sigil-attestation/sigil/verifier/tpm"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustRead(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// in builds "claim in reference values" entries: name → [value].
func in(pairs ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i].(string)] = []any{pairs[i+1]}
	}
	return m
}

func path(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return v
}

// TestDefaultPolicyOnRealVectors runs each real CPU vector through its
// verifier and the default CPU policy, with reference values taken from
// the vector's own claims, and checks the trust vector Trustee's default
// policy gives on the same claims. Collateral comes from an offline
// directory; clocks are pinned inside the vectors' validity windows.
func TestDefaultPolicyOnRealVectors(t *testing.T) {
	ctx := context.Background()
	collateral := t.TempDir()
	copyFile(t, "verifier/tdx/pcs/testdata/tcbInfo.json", filepath.Join(collateral, "tcbinfo-00A06D080000.json"))
	copyFile(t, "verifier/tdx/pcs/testdata/enclaveIdentity.json", filepath.Join(collateral, "qe-identity.json"))
	copyFile(t, "verifier/tdx/pcs/testdata/tcb_signing_chain.pem", filepath.Join(collateral, "tcb-signing-chain.pem"))
	copyFile(t, "verifier/tdx/pcs/testdata/pckcrl_platform.der", filepath.Join(collateral, "pckcrl-platform.der"))
	copyFile(t, "verifier/tdx/pcs/testdata/rootcrl.der", filepath.Join(collateral, "rootcacrl.der"))

	// The generic TPM's AK, trusted through the AK directory.
	var tpmEv struct {
		AKPublic string `json:"ak_public"`
		Quote    struct {
			Message string `json:"message"`
		} `json:"tpm_quote"`
	}
	tpmRaw := mustRead(t, "verifier/tpm/testdata/tpm_evidence.json")
	if err := json.Unmarshal(tpmRaw, &tpmEv); err != nil {
		t.Fatal(err)
	}
	akDER, _ := base64.StdEncoding.DecodeString(tpmEv.AKPublic)
	akDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(akDir, "ak.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: akDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	msg, _ := base64.StdEncoding.DecodeString(tpmEv.Quote.Message)
	att, err := tpm2.ParseAttest(msg)
	if err != nil {
		t.Fatal(err)
	}

	quote6 := mustRead(t, "verifier/tdx/testdata/tdx_quote_6.dat")
	q6, err := tdx.ParseQuote(quote6)
	if err != nil {
		t.Fatal(err)
	}
	snpRaw := mustRead(t, "verifier/snp/testdata/e2e-evidence-genoa.json")
	snpEv, err := snp.ParseEvidence(snpRaw)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	certNow := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	verifiers, err := app.Verifiers(app.VerifierOptions{
		CollateralDir: collateral, NoNetwork: true, Offline: true,
		Now: func() time.Time { return now }, CertNow: func() time.Time { return certNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	tpmV, err := tpm.New(tpm.Options{TrustedAKDir: akDir})
	if err != nil {
		t.Fatal(err)
	}
	verifiers["tpm"] = tpmV

	tdxEvidence, _ := json.Marshal(map[string]any{"quote": base64.StdEncoding.EncodeToString(quote6), "cc_eventlog": nil})
	azSNP := func(input map[string]any) map[string]any {
		c := input["az-snp-vtpm"].(map[string]any)
		return in("measurement", c["measurement"], "snp_pcr11", path(c, "tpm", "pcr11"),
			"tcb_bootloader", c["reported_tcb_bootloader"], "tcb_microcode", c["reported_tcb_microcode"],
			"tcb_snp", c["reported_tcb_snp"], "tcb_tee", c["reported_tcb_tee"],
			"smt_enabled", c["platform_smt_enabled"], "tsme_enabled", c["platform_tsme_enabled"],
			"abi_major", c["policy_abi_major"], "abi_minor", c["policy_abi_minor"],
			"single_socket", c["policy_single_socket"], "smt_allowed", c["policy_smt_allowed"])
	}
	cases := []struct {
		name, tee string
		evidence  []byte
		rd        []byte
		rv        func(input map[string]any) map[string]any
		want      map[string]int
		status    ear.Status
		tcbStatus string // checked for TDX-based evidence
	}{
		{
			// OutOfDate platform TCB → no hardware trust; RTMRs match without a kernel in a log → 4.
			name: "tdx quote 6", tee: "tdx", evidence: tdxEvidence, rd: q6.Body.ReportData[:],
			rv: func(input map[string]any) map[string]any {
				b := path(input, "tdx", "quote", "body").(map[string]any)
				return in("rtmr_1", b["rtmr_1"], "rtmr_2", b["rtmr_2"], "mr_td", b["mr_td"], "xfam", b["xfam"])
			},
			want: map[string]int{"executables": 4, "hardware": 97, "configuration": 2}, status: ear.StatusContraindicated,
			tcbStatus: "OutOfDate",
		},
		{
			name: "snp genoa", tee: "snp", evidence: snpRaw, rd: snpEv.Report.ReportData[:],
			rv: func(input map[string]any) map[string]any {
				c := input["snp"].(map[string]any)
				m := in("snp_launch_measurement", c["measurement"], "snp_bootloader", c["reported_tcb_bootloader"],
					"snp_microcode", c["reported_tcb_microcode"], "snp_snp_svn", c["reported_tcb_snp"], "snp_tee_svn", c["reported_tcb_tee"])
				for rv, claim := range map[string]string{"snp_smt_enabled": "platform_smt_enabled", "snp_tsme_enabled": "platform_tsme_enabled",
					"snp_guest_abi_major": "policy_abi_major", "snp_guest_abi_minor": "policy_abi_minor",
					"snp_single_socket": "policy_single_socket", "snp_smt_allowed": "policy_smt_allowed"} {
					m[rv] = c[claim]
				}
				return m
			},
			want: map[string]int{"executables": 3, "hardware": 2, "configuration": 2}, status: ear.StatusAffirming,
		},
		{name: "az-snp-vtpm v1", tee: "az-snp-vtpm", evidence: mustRead(t, "verifier/azvtpm/testdata/az-snp-vtpm/evidence-v1.json"),
			rd: []byte("challenge"), rv: azSNP, want: map[string]int{"executables": 3, "hardware": 2, "configuration": 2}, status: ear.StatusAffirming},
		{name: "az-snp-vtpm v2", tee: "az-snp-vtpm", evidence: mustRead(t, "verifier/azvtpm/testdata/az-snp-vtpm/evidence-v2.json"),
			rd: mustHex(t, "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef"),
			rv: azSNP, want: map[string]int{"executables": 3, "hardware": 2, "configuration": 2}, status: ear.StatusAffirming},
		{name: "az-snp-vtpm genoa v0", tee: "az-snp-vtpm", evidence: mustRead(t, "verifier/azvtpm/testdata/az-snp-vtpm/evidence-genoa.json"),
			rd: mustHex(t, "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f"),
			rv: azSNP, want: map[string]int{"executables": 3, "hardware": 2, "configuration": 2}, status: ear.StatusAffirming},
		{
			// No Intel collateral for this FMSPC offline → tcb_status Unknown → no hardware trust.
			name: "az-tdx-vtpm v1", tee: "az-tdx-vtpm", evidence: mustRead(t, "verifier/azvtpm/testdata/az-tdx-vtpm/evidence-v1.json"),
			rd: []byte("challenge"),
			rv: func(input map[string]any) map[string]any {
				c := input["az-tdx-vtpm"].(map[string]any)
				return in("tdx_pcr11", path(c, "tpm", "pcr11"), "mr_td", path(c, "quote", "body", "mr_td"), "xfam", path(c, "quote", "body", "xfam"))
			},
			want: map[string]int{"executables": 3, "hardware": 97, "configuration": 2}, status: ear.StatusContraindicated,
			tcbStatus: "Unknown",
		},
		{
			name: "tpm", tee: "tpm", evidence: tpmRaw, rd: att.ExtraData[:48],
			rv: func(input map[string]any) map[string]any {
				c := input["tpm"].(map[string]any)
				return in("tpm_pcr11", c["pcr11"], "trusted_aks", c["ak_public"])
			},
			want: map[string]int{"executables": 3, "hardware": 2, "configuration": 0}, status: ear.StatusAffirming,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := memory.New()
			pol, _ := be.Namespace(ctx, storage.NamespaceASPolicy)
			rvStore, _ := be.Namespace(ctx, storage.NamespaceReferenceValue)
			rv := rvps.New(rvStore, rvps.Options{})
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			broker, _ := ear.NewBroker(ear.BrokerConfig{Signer: key, Now: func() time.Time { return now }})
			svc, err := attestation.New(ctx, attestation.Config{Verifiers: verifiers, Policies: pol, ReferenceValues: rv, Broker: broker})
			if err != nil {
				t.Fatal(err)
			}
			req := &attestation.Request{Tee: c.tee, Evidence: c.evidence, RuntimeData: attestation.RuntimeData{Raw: c.rd}}
			first, err := svc.Evaluate(ctx, req)
			if err != nil {
				t.Fatalf("verification of the real vector failed: %v", err)
			}
			payload, _ := json.Marshal(c.rv(first.Appraisals[0].Input))
			msg, _ := json.Marshal(map[string]string{"version": "0.1.0", "type": "sample", "payload": base64.StdEncoding.EncodeToString(payload)})
			if err := rv.Register(ctx, msg); err != nil {
				t.Fatal(err)
			}
			req.Explain = true
			res, err := svc.Evaluate(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			a := res.Appraisals[0]
			for claim, want := range c.want {
				if got, ok := a.TrustVector.Get(claim); !ok || int(got) != want {
					expl, _ := json.Marshal(a.Explanation)
					t.Errorf("%s = %d, want %d (explanation %s)", claim, got, want, expl)
				}
			}
			if c.tcbStatus != "" {
				claims, _ := a.Input[c.tee].(map[string]any)
				if c.tee == "tdx" && claims["tcb_status"] != c.tcbStatus ||
					c.tee == "az-tdx-vtpm" && claims["tcb_status"] != c.tcbStatus {
					t.Errorf("tcb_status %v, want %s", claims["tcb_status"], c.tcbStatus)
				}
			}
			if a.Status != c.status {
				t.Errorf("status %s, want %s", a.Status, c.status)
			}
			// A different report data is not bound: verification fails.
			bad := append([]byte{}, c.rd...)
			bad[0] ^= 1
			if _, err := svc.Evaluate(ctx, &attestation.Request{Tee: c.tee, Evidence: c.evidence, RuntimeData: attestation.RuntimeData{Raw: bad}}); err == nil {
				t.Error("evidence accepted for other report data")
			}
		})
	}
}
