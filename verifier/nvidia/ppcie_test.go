package nvidia

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// ppcieNonce is the nonce shared by nvtrust's PPCIe vectors.
const ppcieNonce = "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e"

// realPPCIeEvidence joins nvtrust's 8 GPU and 4 switch entries into one
// Trustee evidence document, as the attester sends them.
func realPPCIeEvidence(t testing.TB) []byte {
	t.Helper()
	all := &Evidence{}
	for _, f := range []string{"ppcie/gpu_evidence.json", "ppcie/switch_evidence.json"} {
		ev, err := ParseNVATEvidence(readFile(t, f))
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

// realPPCIeResults verifies the real vectors and returns the 12 device
// results (without the ppcie one) and the ppcie result.
func realPPCIeResults(t testing.TB) ([]verifier.Result, verifier.Result) {
	t.Helper()
	v := newVerifier(t, Options{FailOnInvalidDevice: true})
	res, err := v.Verify(context.Background(), realPPCIeEvidence(t), verifier.Expected{ReportData: mustHex(t, ppcieNonce)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 13 {
		t.Fatalf("%d results, want 12 devices + ppcie", len(res))
	}
	return res[:12], res[12]
}

var allPPCIeChecks = []string{
	ClaimPPCIeTopologyCheck, ClaimPPCIeGPUCountCheck, ClaimPPCIeSwitchCountCheck, ClaimPPCIeDevicesVerified,
	ClaimPPCIeDevicesUnique, ClaimPPCIeModeCheck, ClaimPPCIeGPUSwitchPDIsCheck, ClaimPPCIeSwitchPDIsCheck,
	ClaimPPCIeSwitchGPUPDIsCheck,
}

// The real nvtrust PPCIe set (8 H100 + 4 LS10) validates.
func TestPPCIeRealTopology(t *testing.T) {
	devs, pp := realPPCIeResults(t)
	if pp.Class != ClassPPCIe {
		t.Fatalf("class %q", pp.Class)
	}
	c := pp.Claims
	for _, k := range allPPCIeChecks {
		if c[k] != true {
			t.Errorf("%s = %v", k, c[k])
		}
	}
	if c[ClaimPPCIeGPUCount] != 8.0 || c[ClaimPPCIeSwitchCount] != 4.0 {
		t.Errorf("counts %v %v", c[ClaimPPCIeGPUCount], c[ClaimPPCIeSwitchCount])
	}
	if _, ok := c[ClaimErrors]; ok {
		t.Errorf("errors %v", c[ClaimErrors])
	}
	if n := len(c[ClaimPPCIeSwitchPDIs].([]any)); n != 4 {
		t.Errorf("%d switch PDIs", n)
	}
	if n := len(c[ClaimPPCIeGPUPDIs].([]any)); n != 8 {
		t.Errorf("%d GPU PDIs", n)
	}
	// The GPU-reported example pair from nvidia.md §3.2 (reversed bytes).
	if !slices.Contains(c[ClaimPPCIeSwitchPDIs].([]any), any("3A53B743D811E977")) {
		t.Errorf("switch PDIs %v lack 3A53B743D811E977", c[ClaimPPCIeSwitchPDIs])
	}
	for i, d := range devs {
		if d.Class == ClassGPU && d.Claims[ClaimProtectedPCIeStatus] != "aa" {
			t.Errorf("gpu %d protected PCIe %v", i, d.Claims[ClaimProtectedPCIeStatus])
		}
	}
	if _, err := json.Marshal(c); err != nil {
		t.Error(err)
	}
	// The same set verified without a nonce check validates too.
	v := newVerifier(t, Options{})
	res, err := v.Verify(context.Background(), realPPCIeEvidence(t), verifier.Expected{})
	if err != nil || len(res) != 13 || res[12].Claims[ClaimPPCIeTopologyCheck] != true {
		t.Fatalf("without nonce: %d results, %v", len(res), err)
	}
}

func cloneResults(rs []verifier.Result) []verifier.Result {
	out := make([]verifier.Result, len(rs))
	for i, r := range rs {
		c := maps.Clone(r.Claims)
		if cfg, ok := c["config"].(map[string]any); ok {
			c["config"] = maps.Clone(cfg)
		}
		out[i] = verifier.Result{Class: r.Class, Claims: c}
	}
	return out
}

// Broken variants of the real set: each names the check that must fail.
func TestPPCIeRealBroken(t *testing.T) {
	devs, _ := realPPCIeResults(t)
	firstSwitch := slices.IndexFunc(devs, func(r verifier.Result) bool { return r.Class == ClassSwitch })
	tests := []struct {
		name   string
		mutate func([]verifier.Result) []verifier.Result
		fail   []string
	}{
		{"missing switch", func(r []verifier.Result) []verifier.Result { return r[:11] },
			[]string{ClaimPPCIeSwitchCountCheck, ClaimPPCIeGPUSwitchPDIsCheck}},
		{"missing GPU", func(r []verifier.Result) []verifier.Result { return r[1:] },
			[]string{ClaimPPCIeGPUCountCheck}},
		{"extra GPU", func(r []verifier.Result) []verifier.Result { return append(r, r[0]) },
			[]string{ClaimPPCIeGPUCountCheck, ClaimPPCIeDevicesUnique}},
		{"duplicate GPU", func(r []verifier.Result) []verifier.Result { r[7] = r[0]; return r },
			[]string{ClaimPPCIeDevicesUnique}},
		{"duplicate switch", func(r []verifier.Result) []verifier.Result { r[firstSwitch+1] = r[firstSwitch]; return r },
			[]string{ClaimPPCIeDevicesUnique, ClaimPPCIeSwitchPDIsCheck, ClaimPPCIeGPUSwitchPDIsCheck}},
		{"switch with a GPU's ueid", func(r []verifier.Result) []verifier.Result {
			r[firstSwitch].Claims["ueid"] = r[0].Claims["ueid"]
			return r
		}, []string{ClaimPPCIeDevicesUnique}},
		{"GPU reports a foreign switch PDI", func(r []verifier.Result) []verifier.Result {
			l := slices.Clone(r[3].Claims[claimGPUSwitchPDIs].([]any))
			for i, p := range l {
				if p != zeroPDI {
					l[i] = "0102030405060708"
					break
				}
			}
			r[3].Claims[claimGPUSwitchPDIs] = l
			return r
		}, []string{ClaimPPCIeGPUSwitchPDIsCheck}},
		{"GPU reports 3 switches", func(r []verifier.Result) []verifier.Result {
			l := r[2].Claims[claimGPUSwitchPDIs].([]any)
			var kept []any
			for _, p := range l {
				if p != zeroPDI && len(kept) < 3 {
					kept = append(kept, p)
				}
			}
			r[2].Claims[claimGPUSwitchPDIs] = kept
			return r
		}, []string{ClaimPPCIeGPUSwitchPDIsCheck}},
		{"switch with a wrong own PDI", func(r []verifier.Result) []verifier.Result {
			r[firstSwitch].Claims[claimSwitchPDI] = "0102030405060708"
			return r
		}, []string{ClaimPPCIeGPUSwitchPDIsCheck}},
		{"switch lists 7 GPUs", func(r []verifier.Result) []verifier.Result {
			l := slices.Clone(r[firstSwitch+2].Claims[claimSwitchGPUPDIs].([]any))
			l[7] = l[0]
			r[firstSwitch+2].Claims[claimSwitchGPUPDIs] = l
			return r
		}, []string{ClaimPPCIeSwitchGPUPDIsCheck}},
		{"switches disagree on GPUs", func(r []verifier.Result) []verifier.Result {
			l := slices.Clone(r[firstSwitch+3].Claims[claimSwitchGPUPDIs].([]any))
			l[5] = "0102030405060708"
			r[firstSwitch+3].Claims[claimSwitchGPUPDIs] = l
			return r
		}, []string{ClaimPPCIeSwitchGPUPDIsCheck}},
		{"GPU not in PPCIE mode", func(r []verifier.Result) []verifier.Result {
			r[5].Claims["config"].(map[string]any)["feature_flag"] = "MPT"
			return r
		}, []string{ClaimPPCIeModeCheck}},
		{"protected PCIe off", func(r []verifier.Result) []verifier.Result {
			r[6].Claims[ClaimProtectedPCIeStatus] = "55"
			return r
		}, []string{ClaimPPCIeModeCheck}},
		{"switch signature not verified", func(r []verifier.Result) []verifier.Result {
			r[firstSwitch].Claims["x-nvidia-switch-attestation-report-signature-verified"] = false
			return r
		}, []string{ClaimPPCIeDevicesVerified}},
		{"GPU nonce mismatch", func(r []verifier.Result) []verifier.Result {
			r[1].Claims["x-nvidia-gpu-attestation-report-nonce-match"] = false
			return r
		}, []string{ClaimPPCIeDevicesVerified}},
		{"GPU chain revoked", func(r []verifier.Result) []verifier.Result {
			r[4].Claims["x-nvidia-gpu-attestation-report-cert-chain"] = map[string]any{"x-nvidia-cert-status": "revoked"}
			return r
		}, []string{ClaimPPCIeDevicesVerified}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.mutate(cloneResults(devs))
			pp, err := ValidatePPCIe(in)
			if !errors.Is(err, ErrPPCIeTopology) {
				t.Fatalf("error %v", err)
			}
			if pp == nil || pp.Class != ClassPPCIe {
				t.Fatalf("result %+v", pp)
			}
			c := pp.Claims
			if c[ClaimPPCIeTopologyCheck] != false {
				t.Error("topology check passed")
			}
			for _, k := range allPPCIeChecks[1:] {
				want := !slices.Contains(tt.fail, k)
				if c[k] != want {
					t.Errorf("%s = %v, want %v (errors %v)", k, c[k], want, c[ClaimErrors])
				}
			}
			if l, _ := c[ClaimErrors].([]any); len(l) == 0 {
				t.Error("no reasons recorded")
			}
		})
	}
}

// Sets that are not PPCIe sets get no ppcie result.
func TestPPCIeNotASet(t *testing.T) {
	devs, _ := realPPCIeResults(t)
	gpusOnly := devs[:8]
	switchesOnly := devs[8:]
	noPPCIeGPU := cloneResults(devs)
	for _, r := range noPPCIeGPU[:8] {
		r.Claims["config"].(map[string]any)["feature_flag"] = "SPT"
	}
	for name, rs := range map[string][]verifier.Result{
		"gpus only": gpusOnly, "switches only": switchesOnly, "no GPU in PPCIE mode": noPPCIeGPU, "empty": nil,
		"other classes": {{Class: "cpu", Claims: map[string]any{}}},
	} {
		pp, err := ValidatePPCIe(rs)
		if pp != nil || err != nil {
			t.Errorf("%s: %+v, %v", name, pp, err)
		}
	}
}

// NRAS-shaped claims (no config, no protected-PCIe claim) validate on the
// PDI rules alone; the mode check is null.
func TestPPCIeNRASShapedClaims(t *testing.T) {
	devs, _ := realPPCIeResults(t)
	rs := cloneResults(devs)
	for _, r := range rs {
		delete(r.Claims, "config")
		delete(r.Claims, ClaimProtectedPCIeStatus)
		delete(r.Claims, "measurements")
	}
	// Through JSON, as claims from another verifier would arrive.
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var rt []verifier.Result
	if err := json.Unmarshal(b, &rt); err != nil {
		t.Fatal(err)
	}
	pp, err := ValidatePPCIe(rt)
	if err != nil {
		t.Fatal(err)
	}
	if pp.Claims[ClaimPPCIeTopologyCheck] != true || pp.Claims[ClaimPPCIeModeCheck] != nil {
		t.Errorf("claims %v", pp.Claims)
	}
}

// --- synthetic PPCIe sets built with nvidiatest ---

type synthPPCIe struct {
	switchPDIs [4][]byte // as each switch reports its own PDI
	gpuPDIs    [8][]byte // as the switches report the GPUs
}

func newSynthPPCIe() *synthPPCIe {
	s := &synthPPCIe{}
	for i := range s.switchPDIs {
		s.switchPDIs[i] = binary.BigEndian.AppendUint64(nil, 0x5100_0000_0000_0010+uint64(i)*0x0101)
	}
	for i := range s.gpuPDIs {
		s.gpuPDIs[i] = binary.BigEndian.AppendUint64(nil, 0x6700_0000_0000_0020+uint64(i)*0x0303)
	}
	return s
}

func reversed(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

// gpuOpaque is the default GPU opaque data plus PPCIe fields: 18 link
// PDIs (each switch twice, byte-reversed, zero for disabled links), the
// feature flag and the protected-PCIe status.
func (s *synthPPCIe) gpuOpaque(d *nvidiatest.Device, switches [][]byte, feature uint32, protected byte) []nvidiatest.TLV {
	var links []byte
	for i := range 18 {
		if i < 2*len(switches) {
			links = append(links, reversed(switches[i/2])...)
		} else {
			links = append(links, make([]byte, 8)...)
		}
	}
	return append(d.DefaultOpaque(64),
		nvidiatest.TLV{Type: uint16(OpaqueProtectedPCIeStatus), Data: []byte{protected}},
		nvidiatest.TLV{Type: uint16(OpaqueSwitchPDI), Data: links},
		nvidiatest.TLV{Type: uint16(OpaqueFeatureFlag), Data: binary.LittleEndian.AppendUint32(nil, feature)},
	)
}

// switchOpaque: BIOS version, own PDI, measurement counts and opaque 26
// (8 GPU PDIs then 8 entries of port bytes).
func (s *synthPPCIe) switchOpaque(own []byte, gpus [][]byte) []nvidiatest.TLV {
	var l []byte
	for _, g := range gpus {
		l = append(l, g...)
	}
	for range 8 {
		l = append(l, 1, 2, 3, 4, 5, 6, 7, 8)
	}
	cnt := make([]byte, 4*31)
	return []nvidiatest.TLV{
		{Type: nvidiatest.TypeVBIOSVersion, Data: []byte("96.10.73.00.01")},
		{Type: nvidiatest.TypeSwitchPDI, Data: own},
		{Type: nvidiatest.TypeMsrsCnt, Data: cnt},
		{Type: nvidiatest.TypeSwitchGPUPDIs, Data: l},
	}
}

type synthBreak struct {
	dropSwitch   bool
	foreignPDI   bool // GPU 2 links to a switch that is not in the set
	notPPCIeMode bool // GPU 4 in MPT mode
	ppcieOff     bool // GPU 6 protected PCIe 0x55
}

func (s *synthPPCIe) evidence(t *testing.T, h *nvidiatest.Hierarchy, nonce []byte, b synthBreak) []byte {
	t.Helper()
	var entries []nvidiatest.Entry
	for i := range 8 {
		d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
		sw := slices.Clone(s.switchPDIs[:])
		if b.foreignPDI && i == 2 {
			sw[1] = []byte{9, 9, 9, 9, 9, 9, 9, 9}
		}
		feature, prot := uint32(2), byte(0xAA)
		if b.notPPCIeMode && i == 4 {
			feature = 1
		}
		if b.ppcieOff && i == 6 {
			prot = 0x55
		}
		rep := newReport(t, d, nvidiatest.ReportOptions{Nonce: nonce, Opaque: s.gpuOpaque(d, sw, feature, prot)})
		entries = append(entries, d.Entry(fmt.Sprintf("GPU-%d", i), rep))
	}
	for i := range 4 {
		if b.dropSwitch && i == 3 {
			break
		}
		d := newDevice(t, h, nvidiatest.LS10, nvidiatest.DeviceOptions{})
		rep := newReport(t, d, nvidiatest.ReportOptions{Nonce: nonce, Opaque: s.switchOpaque(s.switchPDIs[i], s.gpuPDIs[:])})
		entries = append(entries, d.Entry(fmt.Sprintf("SWITCH-%d", i), rep))
	}
	return nvidiatest.EvidenceJSON(entries...)
}

func TestPPCIeSynthetic(t *testing.T) {
	h := newHierarchy(t)
	s := newSynthPPCIe()
	rd := freshNonce("ppcie")
	tests := []struct {
		name    string
		brk     synthBreak
		devices int
		fail    []string
	}{
		{"valid", synthBreak{}, 12, nil},
		{"missing switch", synthBreak{dropSwitch: true}, 11, []string{ClaimPPCIeSwitchCountCheck, ClaimPPCIeGPUSwitchPDIsCheck}},
		{"wrong PDI", synthBreak{foreignPDI: true}, 12, []string{ClaimPPCIeGPUSwitchPDIsCheck}},
		{"GPU not in PPCIe mode", synthBreak{notPPCIeMode: true}, 12, []string{ClaimPPCIeModeCheck}},
		{"protected PCIe off", synthBreak{ppcieOff: true}, 12, []string{ClaimPPCIeModeCheck}},
	}
	lax := synthVerifier(t, h, Options{})
	strict := synthVerifier(t, h, Options{FailOnInvalidDevice: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := s.evidence(t, h, rd[:32], tt.brk)
			res, err := lax.Verify(context.Background(), ev, verifier.Expected{ReportData: rd})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != tt.devices+1 {
				t.Fatalf("%d results", len(res))
			}
			pp := res[len(res)-1]
			if pp.Class != ClassPPCIe {
				t.Fatalf("last class %q", pp.Class)
			}
			if pp.Claims[ClaimPPCIeTopologyCheck] != (tt.fail == nil) {
				t.Errorf("topology check %v, errors %v", pp.Claims[ClaimPPCIeTopologyCheck], pp.Claims[ClaimErrors])
			}
			for _, k := range allPPCIeChecks[1:] {
				if want := !slices.Contains(tt.fail, k); pp.Claims[k] != want {
					t.Errorf("%s = %v, want %v (errors %v)", k, pp.Claims[k], want, pp.Claims[ClaimErrors])
				}
			}
			_, err = strict.Verify(context.Background(), ev, verifier.Expected{ReportData: rd})
			if (err != nil) != (tt.fail != nil) || (err != nil && !errors.Is(err, ErrPPCIeTopology)) {
				t.Errorf("strict Verify error %v", err)
			}
		})
	}
	// A stale nonce on one GPU: the device and the topology both fail.
	ev := s.evidence(t, h, rd[:32], synthBreak{})
	res, err := lax.Verify(context.Background(), ev, verifier.Expected{ReportData: freshNonce("other")})
	if err != nil {
		t.Fatal(err)
	}
	if pp := res[len(res)-1]; pp.Claims[ClaimPPCIeDevicesVerified] != false || pp.Claims[ClaimPPCIeTopologyCheck] != false {
		t.Errorf("stale nonce: %v", pp.Claims)
	}
}

func BenchmarkValidatePPCIe(b *testing.B) {
	devs, _ := realPPCIeResults(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidatePPCIe(devs); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzValidatePPCIe feeds arbitrary claim sets (JSON of []verifier.Result,
// seeded with the real PPCIe results): no panic, and the result agrees with
// the error.
func FuzzValidatePPCIe(f *testing.F) {
	devs, _ := realPPCIeResults(f)
	seed, err := json.Marshal(devs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`[{"Class":"switch","Claims":{}},{"Class":"gpu","Claims":{"x-nvidia-gpu-switch-pdis":["0102030405060708"]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rs []verifier.Result
		if json.Unmarshal(data, &rs) != nil {
			return
		}
		pp, err := ValidatePPCIe(rs)
		switch {
		case pp == nil && err != nil:
			t.Fatalf("error without result: %v", err)
		case pp != nil && pp.Claims[ClaimPPCIeTopologyCheck] != (err == nil):
			t.Fatalf("topology check %v with error %v", pp.Claims[ClaimPPCIeTopologyCheck], err)
		case err != nil && !errors.Is(err, ErrPPCIeTopology):
			t.Fatalf("error %v", err)
		}
	})
}
