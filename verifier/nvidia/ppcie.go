package nvidia

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigil-attestation/sigil/verifier"
)

// ClassPPCIe is the class of the synthetic result describing a Protected
// PCIe topology (policy default_ppcie).
const ClassPPCIe = "ppcie"

// PPCIe topology sizes (HGX H100: 8 GPUs, 4 LS10 NVSwitches).
const (
	PPCIeGPUCount          = 8
	PPCIeSwitchCount       = 4
	ppcieSwitchesPerGPU    = 4
	ppcieProtectedPCIeOn   = "aa"
	ppcieFeatureFlag       = "PPCIE"
	zeroPDI                = "0000000000000000"
	claimGPUSwitchPDIs     = "x-nvidia-gpu-switch-pdis"
	claimSwitchPDI         = "x-nvidia-switch-pdi"
	claimSwitchGPUPDIs     = "x-nvidia-switch-gpu-pdis"
	claimCertChainSuffix   = "attestation-report-cert-chain"
	claimCertStatus        = "x-nvidia-cert-status"
	claimFeatureFlagConfig = "feature_flag"
)

// ClaimProtectedPCIeStatus is the GPU's PROTECTED_PCIE_STATUS (opaque type
// 21) in lower-case hex ("aa" when protected PCIe is on). Trustee's config
// claim protected_pcie_status is lossy UTF-8 and cannot tell 0xAA from
// 0x55, so the PPCIe validation reads this one.
const ClaimProtectedPCIeStatus = "x-sigil-protected-pcie-status"

// Claims of the ppcie result. gpu_count and switch_count are Trustee's
// names (it emits only them, and only on success); the x-nvidia-ppcie-*
// booleans record each topology rule so a policy can tell what failed, and
// ClaimErrors lists the reasons.
const (
	ClaimPPCIeGPUCount    = "gpu_count"
	ClaimPPCIeSwitchCount = "switch_count"
	// ClaimPPCIeTopologyCheck is true when every check below passed (a null
	// mode check counts as passed).
	ClaimPPCIeTopologyCheck = "x-nvidia-ppcie-topology-check"
	// ClaimPPCIeGPUCountCheck: exactly 8 GPU results.
	ClaimPPCIeGPUCountCheck = "x-nvidia-ppcie-gpu-count-check"
	// ClaimPPCIeSwitchCountCheck: exactly 4 switch results.
	ClaimPPCIeSwitchCountCheck = "x-nvidia-ppcie-switch-count-check"
	// ClaimPPCIeDevicesVerified: every device's evidence is genuine
	// (parsed, signature verified, chain valid, FWID and nonce not failed).
	ClaimPPCIeDevicesVerified = "x-nvidia-ppcie-devices-verified"
	// ClaimPPCIeDevicesUnique: no device (ueid) appears twice, whatever
	// class it is declared as.
	ClaimPPCIeDevicesUnique = "x-nvidia-ppcie-devices-unique"
	// ClaimPPCIeModeCheck: every GPU runs in PPCIE mode (feature flag) with
	// protected PCIe on (0xAA). Null when the GPU claims carry neither
	// (NRAS claims do not), in which case it is not part of the topology
	// check.
	ClaimPPCIeModeCheck = "x-nvidia-ppcie-mode-check"
	// ClaimPPCIeGPUSwitchPDIsCheck: every GPU reports the same 4 non-zero
	// (byte-reversed) switch PDIs, and they are exactly the switches' own
	// PDIs.
	ClaimPPCIeGPUSwitchPDIsCheck = "x-nvidia-ppcie-gpu-switch-pdis-check"
	// ClaimPPCIeSwitchPDIsCheck: every switch reports its own PDI and the 4
	// PDIs are distinct.
	ClaimPPCIeSwitchPDIsCheck = "x-nvidia-ppcie-switch-pdis-check"
	// ClaimPPCIeSwitchGPUPDIsCheck: every switch lists 8 distinct GPU PDIs,
	// the same set on every switch.
	ClaimPPCIeSwitchGPUPDIsCheck = "x-nvidia-ppcie-switch-gpu-pdis-check"
	// ClaimPPCIeSwitchPDIs and ClaimPPCIeGPUPDIs are the sorted switch PDIs
	// and the sorted union of the switches' GPU PDIs.
	ClaimPPCIeSwitchPDIs = "x-nvidia-ppcie-switch-pdis"
	ClaimPPCIeGPUPDIs    = "x-nvidia-ppcie-gpu-pdis"
)

// ErrPPCIeTopology: the devices form a PPCIe set whose topology or mode
// does not validate.
var ErrPPCIeTopology = errors.New("nvidia: PPCIe topology invalid")

// protectedPCIeClaim adds ClaimProtectedPCIeStatus for GPU reports that
// carry opaque type 21.
func (s *deviceState) protectedPCIeClaim(c map[string]any) {
	if s.arch.IsSwitch() {
		return
	}
	if b, ok := s.report.Field(OpaqueProtectedPCIeStatus); ok {
		c[ClaimProtectedPCIeStatus] = hex.EncodeToString(b)
	}
}

// ValidatePPCIe checks the Protected PCIe topology of the device results
// of one verification (class "gpu" and "switch"; other classes are
// ignored), following NVIDIA's topology rules (nvtrust's PPCIe verifier)
// and more than Trustee's validate_ppcie: 8 GPUs and 4 switches, all
// genuine and distinct; every GPU in PPCIE mode with protected PCIe 0xAA
// (when the claims carry the configuration); every GPU reporting the same
// 4 non-zero switch PDIs (byte-reversed, as the claims already are), equal
// to the switches' own 4 distinct PDIs; every switch reporting the same 8
// distinct GPU PDIs. It reads only claims, so it works on local and NRAS
// claims alike.
//
// The result is nil (and the error nil) when the results are not a PPCIe
// set: a set needs at least one switch and at least one GPU in PPCIE mode
// (feature flag "PPCIE"; for claims without configuration, a GPU that
// reports a non-zero switch PDI). Otherwise the result, of class
// ClassPPCIe, is always returned; when a check fails the error wraps
// ErrPPCIeTopology and lists the reasons, which the result's ClaimErrors
// also holds.
func ValidatePPCIe(results []verifier.Result) (*verifier.Result, error) {
	var gpus, switches []map[string]any
	for _, r := range results {
		switch r.Class {
		case ClassGPU:
			gpus = append(gpus, r.Claims)
		case ClassSwitch:
			switches = append(switches, r.Claims)
		}
	}
	if len(switches) == 0 || !slices.ContainsFunc(gpus, gpuIndicatesPPCIe) {
		return nil, nil
	}

	var reasons []string
	fail := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }
	c := map[string]any{
		ClaimPPCIeGPUCount:    float64(len(gpus)),
		ClaimPPCIeSwitchCount: float64(len(switches)),
	}

	check := func(name string, ok bool) bool {
		c[name] = ok
		return ok
	}
	check(ClaimPPCIeGPUCountCheck, len(gpus) == PPCIeGPUCount)
	if len(gpus) != PPCIeGPUCount {
		fail("%d GPUs, want %d", len(gpus), PPCIeGPUCount)
	}
	check(ClaimPPCIeSwitchCountCheck, len(switches) == PPCIeSwitchCount)
	if len(switches) != PPCIeSwitchCount {
		fail("%d switches, want %d", len(switches), PPCIeSwitchCount)
	}

	// Genuine and distinct devices.
	verified, unique := true, true
	seen := map[string]string{}
	for _, d := range devices(gpus, switches) {
		if why := notGenuine(d.claims, d.prefix); why != "" {
			verified = false
			fail("%s is not verified: %s", d.name, why)
		}
		// Across classes too: a GPU's evidence declared as a switch is
		// still that GPU.
		if u, ok := d.claims["ueid"].(string); ok && u != "" {
			if other, dup := seen[u]; dup {
				unique = false
				fail("%s and %s are the same device (ueid %s)", other, d.name, u)
			}
			seen[u] = d.name
		}
	}
	check(ClaimPPCIeDevicesVerified, verified)
	check(ClaimPPCIeDevicesUnique, unique)

	// PPCIE mode (local claims only).
	modeOK, modeKnown := true, false
	for i, g := range gpus {
		cfg, _ := g["config"].(map[string]any)
		ff, hasFF := cfg[claimFeatureFlagConfig].(string)
		pp, hasPP := g[ClaimProtectedPCIeStatus].(string)
		if !hasFF && !hasPP {
			continue
		}
		modeKnown = true
		if ff != ppcieFeatureFlag {
			modeOK = false
			fail("GPU %d (%v) feature flag %q, want %q", i, g["uuid"], ff, ppcieFeatureFlag)
		}
		if pp != ppcieProtectedPCIeOn {
			modeOK = false
			fail("GPU %d (%v) protected PCIe status %q, want %q", i, g["uuid"], pp, ppcieProtectedPCIeOn)
		}
	}
	if modeKnown {
		c[ClaimPPCIeModeCheck] = modeOK
	} else {
		c[ClaimPPCIeModeCheck] = nil
	}

	// Switch PDIs: one each, all distinct.
	switchOK := true
	switchSet := map[string]bool{}
	for i, s := range switches {
		p, _ := s[claimSwitchPDI].(string)
		p = strings.ToUpper(p)
		switch {
		case p == "" || p == zeroPDI:
			switchOK = false
			fail("switch %d (%v) reports no PDI", i, s["uuid"])
		case switchSet[p]:
			switchOK = false
			fail("switch PDI %s appears twice", p)
		default:
			switchSet[p] = true
		}
	}
	check(ClaimPPCIeSwitchPDIsCheck, switchOK)
	switchPDIs := sortedKeys(switchSet)
	c[ClaimPPCIeSwitchPDIs] = toAny(switchPDIs)

	// GPU-reported switch PDIs: the same 4 on every GPU, equal to the
	// switches' own.
	gpuSideOK := true
	var first []string
	for i, g := range gpus {
		set := map[string]bool{}
		for _, p := range stringList(g[claimGPUSwitchPDIs]) {
			if p = strings.ToUpper(p); p != zeroPDI {
				set[p] = true
			}
		}
		got := sortedKeys(set)
		if len(got) != ppcieSwitchesPerGPU {
			gpuSideOK = false
			fail("GPU %d (%v) reports %d switch PDIs, want %d", i, g["uuid"], len(got), ppcieSwitchesPerGPU)
		}
		if first == nil {
			first = got
		} else if !slices.Equal(first, got) {
			gpuSideOK = false
			fail("GPU %d (%v) reports switch PDIs %v, GPU 0 reports %v", i, g["uuid"], got, first)
		}
		for _, p := range got {
			if !switchSet[p] {
				gpuSideOK = false
				fail("GPU %d (%v) is linked to switch PDI %s, which no verified switch reports", i, g["uuid"], p)
			}
		}
	}
	if gpuSideOK && !slices.Equal(first, switchPDIs) {
		gpuSideOK = false
		fail("switch PDIs %v are not those the GPUs report %v", switchPDIs, first)
	}
	check(ClaimPPCIeGPUSwitchPDIsCheck, gpuSideOK)

	// Switch-reported GPU PDIs: 8 distinct, the same set on every switch.
	switchSideOK := true
	union := map[string]bool{}
	var firstGPUs []string
	for i, s := range switches {
		list := stringList(s[claimSwitchGPUPDIs])
		set := map[string]bool{}
		for _, p := range list {
			p = strings.ToUpper(p)
			if p == zeroPDI {
				continue
			}
			set[p] = true
			union[p] = true
		}
		got := sortedKeys(set)
		if len(list) != PPCIeGPUCount || len(got) != PPCIeGPUCount {
			switchSideOK = false
			fail("switch %d (%v) lists %d GPU PDIs (%d distinct non-zero), want %d distinct", i, s["uuid"], len(list), len(got), PPCIeGPUCount)
		}
		if firstGPUs == nil {
			firstGPUs = got
		} else if !slices.Equal(firstGPUs, got) {
			switchSideOK = false
			fail("switch %d (%v) lists GPU PDIs %v, switch 0 lists %v", i, s["uuid"], got, firstGPUs)
		}
	}
	if len(union) != PPCIeGPUCount {
		switchSideOK = false
		fail("the switches list %d distinct GPU PDIs, want %d", len(union), PPCIeGPUCount)
	}
	check(ClaimPPCIeSwitchGPUPDIsCheck, switchSideOK)
	c[ClaimPPCIeGPUPDIs] = toAny(sortedKeys(union))

	c[ClaimPPCIeTopologyCheck] = len(reasons) == 0
	res := &verifier.Result{Class: ClassPPCIe, Claims: c}
	if len(reasons) == 0 {
		return res, nil
	}
	c[ClaimErrors] = toAny(reasons)
	return res, fmt.Errorf("%w: %s", ErrPPCIeTopology, strings.Join(reasons, "; "))
}

// gpuIndicatesPPCIe: feature flag PPCIE, or (for claims without the
// configuration, i.e. NRAS) a non-zero switch PDI.
func gpuIndicatesPPCIe(g map[string]any) bool {
	if cfg, ok := g["config"].(map[string]any); ok {
		if ff, ok := cfg[claimFeatureFlagConfig].(string); ok {
			return ff == ppcieFeatureFlag
		}
	}
	for _, p := range stringList(g[claimGPUSwitchPDIs]) {
		if p != "" && p != zeroPDI {
			return true
		}
	}
	return false
}

type ppcieDevice struct {
	name, prefix string
	claims       map[string]any
}

func devices(gpus, switches []map[string]any) []ppcieDevice {
	var out []ppcieDevice
	for i, g := range gpus {
		out = append(out, ppcieDevice{fmt.Sprintf("GPU %d (%v)", i, g["uuid"]), "x-nvidia-gpu-", g})
	}
	for i, s := range switches {
		out = append(out, ppcieDevice{fmt.Sprintf("switch %d (%v)", i, s["uuid"]), "x-nvidia-switch-", s})
	}
	return out
}

// notGenuine says why a device's claims do not show genuine evidence ("" if
// they do): report parsed, signature verified, chain valid, FWID matched
// and the nonce not mismatched, no recorded errors.
func notGenuine(c map[string]any, p string) string {
	var why []string
	for _, k := range []string{"attestation-report-parsed", "attestation-report-signature-verified", "attestation-report-cert-chain-fwid-match"} {
		if c[p+k] != true {
			why = append(why, k+" is not true")
		}
	}
	if c[p+"attestation-report-nonce-match"] == false {
		why = append(why, "attestation-report-nonce-match is false")
	}
	if cc, _ := c[p+claimCertChainSuffix].(map[string]any); cc[claimCertStatus] != "valid" {
		why = append(why, fmt.Sprintf("certificate chain status %v", cc[claimCertStatus]))
	}
	if errs, ok := c[ClaimErrors]; ok && errs != nil {
		why = append(why, fmt.Sprintf("errors %v", errs))
	}
	return strings.Join(why, ", ")
}

// stringList reads a claim that is a list of strings ([]any or []string).
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
