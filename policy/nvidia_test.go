package policy

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// Tests of default_gpu, default_switch and default_ppcie on real NRAS
// claims and on the claims Sigil's local NVIDIA verifier produces from the
// real vectors in testdata/nvidia (see its README).

const trusteeNonce = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"

var nvNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func nvFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nvidia", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nrasInput is {"nvidia": <device claims>} from a decoded NRAS file, as the
// attestation service hands NRAS claims to the policy.
func nrasInput(t testing.TB, file, key string) map[string]any {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(nvFile(t, file), &m); err != nil {
		t.Fatal(err)
	}
	c, ok := m[key]
	if !ok {
		t.Fatalf("%s: no %s", file, key)
	}
	return map[string]any{"nvidia": c}
}

// fakeRIM stands in for the RIM service and measurement comparison.
type fakeRIM struct {
	success bool
	mutate  func(*nvidia.MeasurementResult)
}

func rimStatus(id string) *nvidia.RIMStatus {
	return &nvidia.RIMStatus{
		ID: id, Fetched: true, SchemaValidated: true, SignatureVerified: true, VersionMatch: true, MeasurementsAvailable: true,
		CertChain: &nvidia.CertChainStatus{Status: "valid", OCSPStatus: "good", Expiration: nvNow.AddDate(1, 0, 0)},
	}
}

func (f fakeRIM) Appraise(_ context.Context, d nvidia.DeviceInfo) (*nvidia.MeasurementResult, error) {
	r := &nvidia.MeasurementResult{Success: f.success, IndexNoConflict: true}
	if d.Arch.IsSwitch() {
		r.VBIOS = rimStatus("NV_SWITCH_BIOS_5612_0002_890_" + strings.ReplaceAll(d.VBIOSVersion, ".", ""))
	} else {
		r.OEMID = "5703"
		r.Driver = rimStatus("NV_GPU_DRIVER_GH100_" + d.DriverVersion)
		r.VBIOS = rimStatus("NV_GPU_VBIOS_" + d.Project + "_" + d.ProjectSKU + "_" + d.ChipSKU + "_" + strings.ReplaceAll(d.VBIOSVersion, ".", ""))
	}
	if !f.success {
		r.Mismatches = []nvidia.MeasurementMismatch{{Index: 9, Source: "VBIOS", GoldenSize: 48, GoldenValues: []string{"00"}, RuntimeSize: 48, RuntimeValue: "11"}}
	}
	if f.mutate != nil {
		f.mutate(r)
	}
	return r, nil
}

// fakeOCSP stands in for NVIDIA's OCSP responder.
type fakeOCSP struct{ status, detail string }

func (f fakeOCSP) CheckChain(context.Context, []*x509.Certificate) (string, string, error) {
	return f.status, f.detail, nil
}

// localOpts configure one local verification of the real vectors.
type localOpts struct {
	rim        nvidia.MeasurementAppraiser // nil: no RIM appraisal
	ocsp       nvidia.RevocationChecker    // nil: no OCSP
	roots      []*x509.Certificate
	reportData string // hex; "" means the vector's own nonce
	tamper     bool   // flip a bit in each report's signature
}

func hexReport(t testing.TB, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(string(nvFile(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localClaims runs the local verifier on one real report and returns the
// policy input {"nvidia": claims}, through JSON as the service would.
func localClaims(t testing.TB, arch, report, chain string, o localOpts) map[string]any {
	t.Helper()
	rep := hexReport(t, report)
	if o.tamper {
		rep[len(rep)-1] ^= 1
	}
	ev, err := json.Marshal(nvidia.Evidence{Devices: []nvidia.DeviceEvidence{{
		Arch: arch, UUID: "GPU-0", Evidence: hex.EncodeToString(rep),
		Certificate: base64.StdEncoding.EncodeToString(nvFile(t, chain)),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	res := localVerify(t, ev, o, trusteeNonce)
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	return map[string]any{"nvidia": roundTrip(t, res[0].Claims)}
}

func localVerify(t testing.TB, evidence []byte, o localOpts, nonce string) []verifier.Result {
	t.Helper()
	v, err := nvidia.New(nvidia.Options{Now: func() time.Time { return nvNow }, Appraiser: o.rim, Revocation: o.ocsp, Roots: o.roots})
	if err != nil {
		t.Fatal(err)
	}
	if o.reportData != "" {
		nonce = o.reportData
	}
	rd, err := hex.DecodeString(nonce)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Verify(context.Background(), evidence, verifier.Expected{ReportData: rd})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func roundTrip(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func otherRoot(t testing.TB) []*x509.Certificate {
	t.Helper()
	h, err := nvidiatest.NewHierarchy(nvNow.AddDate(-1, 0, 0), nvNow.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{h.Root}
}

type policyCase struct {
	name   string
	in     func(t *testing.T) map[string]any
	rvs    map[string]string
	mutate func(map[string]any)
	want   vec
	status ear.Status
}

func runPolicyCases(t *testing.T, id string, cases []policyCase) {
	t.Helper()
	p := defaultPolicy(t, id)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := clone(t, tc.in(t))
			if tc.mutate != nil {
				tc.mutate(in)
			}
			out, err := p.Evaluate(context.Background(), in, newRV(tc.rvs), false)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, out.TrustVector, tc.want, tc.status)
		})
	}
}

func setNV(kv ...any) func(map[string]any) {
	return func(m map[string]any) {
		for i := 0; i+1 < len(kv); i += 2 {
			obj(m, "nvidia")[kv[i].(string)] = kv[i+1]
		}
	}
}

func delNV(keys ...string) func(map[string]any) {
	return func(m map[string]any) {
		for _, k := range keys {
			delete(obj(m, "nvidia"), k)
		}
	}
}

func TestDefaultGPUNVIDIA(t *testing.T) {
	rvs := map[string]string{"allowed_vbios_versions": `["96.00.9F.00.01"]`, "allowed_driver_versions": `["550.90.07"]`}
	nras := func(t *testing.T) map[string]any { return nrasInput(t, "hopperClaimsv3_decoded.json", "GPU-0") }
	local := func(o localOpts) func(t *testing.T) map[string]any {
		return func(t *testing.T) map[string]any {
			return localClaims(t, "HOPPER", "hopperAttestationReport.txt", "hopper_cert_chain_case1.txt", o)
		}
	}
	verified := localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}}
	contra := ear.StatusContraindicated
	cases := []policyCase{
		// Real NRAS claims: Trustee's outcomes.
		{"nras approved", nras, rvs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"nras versions not registered", nras, nil, nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"nras driver not allowed", nras, with(rvs, "allowed_driver_versions", `["535.86.09"]`), nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"nras lower-case vbios not allowed", nras, with(rvs, "allowed_vbios_versions", `["96.00.9f.00.01"]`), nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"nras debug enabled", nras, rvs, setNV("dbgstat", "enabled"), vec{3, 2, 36}, ear.StatusWarning},
		{"nras measres fail", nras, rvs, setNV("measres", "fail", "secboot", nil, "dbgstat", nil), vec{33, 2, 36}, ear.StatusWarning},
		{"nras measres fail only", nras, rvs, setNV("measres", "fail"), vec{33, 2, 2}, ear.StatusWarning},
		{"nras chain invalid", nras, rvs, setNV("x-nvidia-gpu-attestation-report-cert-chain", map[string]any{"x-nvidia-cert-status": "invalid", "x-nvidia-cert-ocsp-status": "good"}), vec{3, 97, 2}, contra},
		{"nras chain revoked", nras, rvs, setNV("x-nvidia-gpu-attestation-report-cert-chain", map[string]any{"x-nvidia-cert-status": "revoked", "x-nvidia-cert-ocsp-status": "revoked"}), vec{3, 97, 2}, contra},
		{"nras fwid mismatch", nras, rvs, setNV("x-nvidia-gpu-attestation-report-cert-chain-fwid-match", false), vec{3, 97, 2}, contra},
		{"nras signature not verified", nras, rvs, setNV("x-nvidia-gpu-attestation-report-signature-verified", false), vec{3, 97, 2}, contra},
		{"nras arch check missing", nras, rvs, delNV("x-nvidia-gpu-arch-check"), vec{3, 97, 2}, contra},
		{"nras nonce mismatch", nras, rvs, setNV("x-nvidia-gpu-attestation-report-nonce-match", false), vec{3, 97, 2}, contra},
		{"nras vbios rim chain expired", nras, rvs, setNV("x-nvidia-gpu-vbios-rim-cert-chain", map[string]any{"x-nvidia-cert-status": "expired", "x-nvidia-cert-ocsp-status": "good"}), vec{33, 2, 2}, ear.StatusWarning},
		{"nras driver rim chain not checked", nras, rvs, setNV("x-nvidia-gpu-driver-rim-cert-chain", nil), vec{3, 2, 2}, ear.StatusAffirming},
		{"nras driver rim version mismatch", nras, rvs, setNV("x-nvidia-gpu-driver-rim-version-match", false), vec{33, 2, 2}, ear.StatusWarning},
		{"nras claims 2.0 shape", nras, rvs, func(m map[string]any) {
			delNV("x-nvidia-gpu-attestation-report-cert-chain", "x-nvidia-gpu-vbios-rim-cert-chain")(m)
			setNV("x-nvidia-gpu-attestation-report-cert-chain-validated", true)(m)
		}, vec{33, 97, 2}, contra},

		// Local claims from the real Hopper report.
		{"local verified", local(verified), rvs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"local versions not registered", local(verified), nil, nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"local vbios not allowed", local(verified), with(rvs, "allowed_vbios_versions", `["96.00.5E.00.01"]`), nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"local debug enabled", local(verified), rvs, setNV("dbgstat", "enabled"), vec{3, 2, 36}, ear.StatusWarning},
		{"local measres fail", local(localOpts{rim: fakeRIM{success: false}, ocsp: fakeOCSP{status: "good"}}), rvs, nil, vec{33, 2, 36}, ear.StatusWarning},
		{"local vbios rim signature fails", local(localOpts{rim: fakeRIM{success: false, mutate: func(r *nvidia.MeasurementResult) { r.VBIOS.SignatureVerified = false }}, ocsp: fakeOCSP{status: "good"}}), rvs, nil, vec{33, 2, 36}, ear.StatusWarning},
		{"local vbios rim chain revoked", local(localOpts{rim: fakeRIM{success: true, mutate: func(r *nvidia.MeasurementResult) { r.VBIOS.CertChain.OCSPStatus = "revoked" }}, ocsp: fakeOCSP{status: "good"}}), rvs, nil, vec{33, 2, 2}, ear.StatusWarning},
		{"local no RIM appraiser", local(localOpts{ocsp: fakeOCSP{status: "good"}}), rvs, nil, vec{33, 2, 36}, ear.StatusWarning},
		{"local without OCSP", local(localOpts{rim: fakeRIM{success: true}}), rvs, nil, vec{3, 97, 2}, contra},
		{"local device chain revoked", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "revoked", detail: "key_compromise"}}), rvs, nil, vec{3, 97, 2}, contra},
		{"local OCSP unknown", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "unknown"}}), rvs, nil, vec{3, 97, 2}, contra},
		{"local chain invalid", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}, roots: otherRoot(t)}), rvs, nil, vec{33, 97, 36}, contra},
		{"local signature invalid", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}, tamper: true}), rvs, nil, vec{33, 97, 36}, contra},
		{"local nonce mismatch", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}, reportData: strings.Repeat("ab", 32)}), rvs, nil, vec{33, 97, 36}, contra},
	}
	runPolicyCases(t, "default_gpu", cases)
}

func TestDefaultSwitchNVIDIA(t *testing.T) {
	rvs := map[string]string{"allowed_switch_bios_versions": `["96.10.55.00.01"]`}
	nras := func(t *testing.T) map[string]any { return nrasInput(t, "switch_decoded.json", "SWITCH-0") }
	local := func(o localOpts) func(t *testing.T) map[string]any {
		return func(t *testing.T) map[string]any {
			return localClaims(t, "LS10", "switchAttestationReport.txt", "switchCertChain.txt", o)
		}
	}
	verified := localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}}
	contra := ear.StatusContraindicated
	cases := []policyCase{
		{"nras approved", nras, rvs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"nras bios not registered", nras, nil, nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"nras bios not allowed", nras, with(rvs, "allowed_switch_bios_versions", `["96.10.73.00.01"]`), nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"nras debug enabled", nras, rvs, setNV("dbgstat", "enabled"), vec{3, 2, 36}, ear.StatusWarning},
		{"nras measres fail", nras, rvs, setNV("measres", "fail", "secboot", nil, "dbgstat", nil), vec{33, 2, 36}, ear.StatusWarning},
		{"nras chain invalid", nras, rvs, setNV("x-nvidia-switch-attestation-report-cert-chain", map[string]any{"x-nvidia-cert-status": "invalid", "x-nvidia-cert-ocsp-status": "good"}), vec{3, 97, 2}, contra},
		{"nras arch check failed", nras, rvs, setNV("x-nvidia-switch-arch-check", false), vec{3, 97, 2}, contra},
		{"nras bios rim chain revoked", nras, rvs, setNV("x-nvidia-switch-bios-rim-cert-chain", map[string]any{"x-nvidia-cert-status": "valid", "x-nvidia-cert-ocsp-status": "revoked"}), vec{33, 2, 2}, ear.StatusWarning},
		{"nras bios rim not fetched", nras, rvs, setNV("x-nvidia-switch-bios-rim-fetched", false), vec{33, 2, 2}, ear.StatusWarning},
		{"gpu claims are not switch claims", func(t *testing.T) map[string]any {
			return nrasInput(t, "hopperClaimsv3_decoded.json", "GPU-0")
		}, rvs, nil, vec{33, 97, 3}, contra},

		{"local verified", local(verified), rvs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"local bios not registered", local(verified), nil, nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"local debug enabled", local(verified), rvs, setNV("dbgstat", "enabled"), vec{3, 2, 36}, ear.StatusWarning},
		{"local measres fail", local(localOpts{rim: fakeRIM{success: false}, ocsp: fakeOCSP{status: "good"}}), rvs, nil, vec{33, 2, 36}, ear.StatusWarning},
		{"local without OCSP", local(localOpts{rim: fakeRIM{success: true}}), rvs, nil, vec{3, 97, 2}, contra},
		{"local chain invalid", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}, roots: otherRoot(t)}), rvs, nil, vec{33, 97, 36}, contra},
		{"local signature invalid", local(localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}, tamper: true}), rvs, nil, vec{33, 97, 36}, contra},
	}
	runPolicyCases(t, "default_switch", cases)
}

// The local verifier emits, for every claim the default policies read,
// the value NRAS reported for the same real report (given RIM and OCSP
// outcomes equal to NRAS's).
func TestLocalClaimsMatchNRAS(t *testing.T) {
	verified := localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}}
	for _, tc := range []struct {
		name, arch, report, chain, nrasFile, key string
	}{
		{"gpu", "HOPPER", "hopperAttestationReport.txt", "hopper_cert_chain_case1.txt", "hopperClaimsv3_decoded.json", "GPU-0"},
		{"switch", "LS10", "switchAttestationReport.txt", "switchCertChain.txt", "switch_decoded.json", "SWITCH-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := obj(localClaims(t, tc.arch, tc.report, tc.chain, verified), "nvidia")
			nras := obj(nrasInput(t, tc.nrasFile, tc.key), "nvidia")
			for k, want := range nras {
				switch k {
				case "iss", "iat", "nbf", "exp", "jti":
					continue // token claims
				}
				got, ok := local[k]
				if !ok {
					t.Errorf("local claims lack %s", k)
					continue
				}
				if wm, isObj := want.(map[string]any); isObj {
					gm, _ := got.(map[string]any)
					for _, sub := range []string{"x-nvidia-cert-status", "x-nvidia-cert-ocsp-status"} {
						if gm[sub] != wm[sub] {
							t.Errorf("%s.%s = %v, NRAS %v", k, sub, gm[sub], wm[sub])
						}
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, NRAS %#v", k, got, want)
				}
			}
		})
	}
}

func ppcieEvidence(t testing.TB) []byte {
	t.Helper()
	all := &nvidia.Evidence{}
	for _, f := range []string{"ppcie/gpu_evidence.json", "ppcie/switch_evidence.json"} {
		ev, err := nvidia.ParseNVATEvidence(nvFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		all.Devices = append(all.Devices, ev.Devices...)
	}
	b, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const ppcieNonce = "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e"

func TestDefaultPPCIe(t *testing.T) {
	verified := localOpts{rim: fakeRIM{success: true}, ocsp: fakeOCSP{status: "good"}}
	res := localVerify(t, ppcieEvidence(t), verified, ppcieNonce)
	if len(res) != 13 || res[12].Class != nvidia.ClassPPCIe {
		t.Fatalf("%d results", len(res))
	}
	// Every submod of the real PPCIe set is affirming under the defaults.
	rvs := map[string]string{
		"allowed_vbios_versions": `["96.00.A5.00.01"]`, "allowed_driver_versions": `["590.12"]`,
		"allowed_switch_bios_versions": `["96.10.73.00.01"]`,
	}
	for i, r := range res {
		p := defaultPolicy(t, "default_"+r.Class)
		out, err := p.Evaluate(context.Background(), map[string]any{"nvidia": roundTrip(t, r.Claims)}, newRV(rvs), false)
		if err != nil {
			t.Fatal(err)
		}
		want := vec{3, 2, 2}
		if r.Class == nvidia.ClassPPCIe {
			want = vec{0, 0, 2}
		}
		t.Run(fmt.Sprintf("%s-%d", r.Class, i), func(t *testing.T) { checkVector(t, out.TrustVector, want, ear.StatusAffirming) })
	}

	// A broken topology: one switch missing.
	broken, err := nvidia.ValidatePPCIe(res[:11])
	if broken == nil || err == nil {
		t.Fatalf("missing switch validated: %v", err)
	}
	ppcie := func(c map[string]any) func(*testing.T) map[string]any {
		return func(t *testing.T) map[string]any { return map[string]any{"nvidia": roundTrip(t, c)} }
	}
	cases := []policyCase{
		{"local valid topology", ppcie(res[12].Claims), nil, nil, vec{0, 0, 2}, ear.StatusAffirming},
		{"local missing switch", ppcie(broken.Claims), nil, nil, vec{0, 0, 96}, ear.StatusContraindicated},
		{"topology check false", ppcie(res[12].Claims), nil, setNV(nvidia.ClaimPPCIeTopologyCheck, false), vec{0, 0, 96}, ear.StatusContraindicated},
		{"topology check not a bool", ppcie(res[12].Claims), nil, setNV(nvidia.ClaimPPCIeTopologyCheck, "true"), vec{0, 0, 36}, ear.StatusWarning},
		{"trustee claims", ppcie(map[string]any{"gpu_count": 8, "switch_count": 4}), nil, nil, vec{0, 0, 2}, ear.StatusAffirming},
		{"trustee-shaped wrong counts", ppcie(map[string]any{"gpu_count": 7, "switch_count": 4}), nil, nil, vec{0, 0, 36}, ear.StatusWarning},
		{"no claims", func(*testing.T) map[string]any { return map[string]any{} }, nil, nil, vec{0, 0, 36}, ear.StatusWarning},
	}
	runPolicyCases(t, "default_ppcie", cases)
}

func TestNVIDIADefaultPoliciesEmbedded(t *testing.T) {
	pols := DefaultAppraisalPolicies()
	for _, id := range []string{"default_gpu", "default_switch", "default_ppcie"} {
		if _, ok := pols[id]; !ok {
			t.Errorf("missing %s", id)
		}
	}
}
