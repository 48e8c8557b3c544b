package nvidia

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
)

// Tampered in-memory copies of Trustee's vector fail with specific errors.
func TestRealTampered(t *testing.T) {
	rep := readReport(t, "hopperAttestationReport.txt")
	chain := readFile(t, "hopper_cert_chain_case1.txt")
	certs, err := ParseCertChain(chain)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the DER signature of the BROM certificate and
	// re-encode the chain.
	bromDER := bytes.Clone(certs[1].Raw)
	bromDER[len(bromDER)-5] ^= 0x40
	badBROM := mustParseCert(t, bromDER)
	tamperedChain := pemChain(certs[0], badBROM, certs[2], certs[3], certs[4])

	cases := []struct {
		name  string
		rep   []byte
		chain []byte
		nonce string
		want  []error
	}{
		{"report byte in measurements", flip(rep, 37+8+100), chain, trusteeNonce, []error{ErrSignature}},
		{"report byte in opaque data", flip(rep, 4021-50), chain, trusteeNonce, []error{ErrSignature}},
		{"signature byte", flip(rep, len(rep)-1), chain, trusteeNonce, []error{ErrSignature}},
		{"certificate byte", rep, tamperedChain, trusteeNonce, []error{ErrCertChain}},
		{"wrong nonce", rep, chain, strings.Repeat("00", 32), []error{ErrNonceMismatch}},
		{"trailing bytes tolerated", append(bytes.Clone(rep), 0x00, 0x01), chain, trusteeNonce, nil},
		{"SHA-384 report data truncated to 32", rep, chain, trusteeNonce + "ffffffffffffffffffffffffffffffff", nil},
	}
	v := newVerifier(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := v.VerifyDevice(context.Background(), device("HOPPER", "u", tc.rep, tc.chain), verifier.Expected{ReportData: mustHex(t, tc.nonce)})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
			if _, ok := res.Claims[ClaimErrors]; !ok {
				t.Error("claims do not record the failure")
			}
		})
	}
	// The trailing bytes are outside the signed range.
	r, err := ParseReport(append(bytes.Clone(rep), 0, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if r.SignedLen != 4021 || r.Trailing != 3 {
		t.Errorf("signed %d, trailing %d", r.SignedLen, r.Trailing)
	}
}

// What the X.509 checks alone conclude about Trustee's negative chains,
// and why the length and FWID rules are needed (the case4 trap).
func TestTrusteeChainCases(t *testing.T) {
	roots, err := DefaultRoots()
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) []*x509Certificate {
		c, err := ParseCertChain(readFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := load("hopper_cert_chain_case2.txt"); len(c) != 1 {
		t.Errorf("case2 has %d certificates", len(c))
	}
	// case3 (ICA missing) fails X.509 even with the length rule relaxed.
	c3 := load("hopper_cert_chain_case3.txt")
	if _, err := verifyChainLen(c3, roots, ArchHopper, fixedNow, len(c3)); !errors.Is(err, ErrCertChain) || errors.Is(err, ErrChainLength) {
		t.Errorf("case3 relaxed: %v", err)
	}
	// case4 (leaf missing) is a valid X.509 chain: only the FWID extension
	// (and the length rule) reject it.
	c4 := load("hopper_cert_chain_case4.txt")
	info, err := verifyChainLen(c4, roots, ArchHopper, fixedNow, len(c4))
	if err != nil {
		t.Fatalf("case4 relaxed should verify as X.509: %v", err)
	}
	if !errors.Is(info.fwidErr, ErrFWID) {
		t.Errorf("case4 FWID error = %v", info.fwidErr)
	}
	if _, err := verifyChain(c4, roots, ArchHopper, fixedNow); !errors.Is(err, ErrChainLength) {
		t.Errorf("case4 strict: %v", err)
	}
	// hopper_signing_cert.pem is certificate 0 of case1.
	leaf := load("hopper_signing_cert.pem")
	if !leaf[0].Equal(load("hopper_cert_chain_case1.txt")[0]) {
		t.Error("signing cert differs from case1 leaf")
	}
	c1 := load("hopper_cert_chain_case1.txt")
	fw, err := CertFWID(c1[0], ArchHopper)
	if err != nil || !strings.HasPrefix(hex.EncodeToString(fw), "f5c384ae") || !strings.HasSuffix(hex.EncodeToString(fw), "62b1f75d") {
		t.Errorf("case1 FWID %x, %v", fw, err)
	}
	bw := load("gpu/blackwellCertChain.txt")
	fw, err = CertFWID(bw[0], ArchBlackwell)
	if err != nil || !strings.HasPrefix(hex.EncodeToString(fw), "d090cab1") || !strings.HasSuffix(hex.EncodeToString(fw), "ccf77502") {
		t.Errorf("blackwell FWID %x, %v", fw, err)
	}
	if got := c1[0].SerialNumber.String(); got != "478176379286082186618948445787393647364802107249" {
		t.Errorf("ueid %s", got)
	}
	// A chain must end at the pinned root even if it is otherwise valid.
	if _, err := verifyChain(c1, c1[4:4], ArchHopper, fixedNow); !errors.Is(err, ErrCertChain) {
		t.Errorf("no roots: %v", err)
	}
}

type goldenRequest struct {
	SPDMVersion, RequestResponseCode, Param1, Param2, Nonce, SlotIDParam string
}

func hexField(t *testing.T, s string) []byte {
	t.Helper()
	return mustHex(t, strings.TrimPrefix(s, "0x"))
}

// NVAT's field-by-field parse goldens (GPU and switch).
func TestParseGoldens(t *testing.T) {
	for _, tc := range []struct{ report, req, resp string }{
		{"gpu/parse-golden/hopperAttestationReport.txt", "gpu/parse-golden/spdm_req_parsed_output.json", "gpu/parse-golden/spdm_parsed_output.json"},
		{"switch/switchAttestationReport.txt", "switch/switch_spdm_req_parsed_output.json", "switch/switch_spdm_parsed_output.json"},
	} {
		t.Run(tc.report, func(t *testing.T) {
			r, err := ParseReport(readReport(t, tc.report))
			if err != nil {
				t.Fatal(err)
			}
			var rq goldenRequest
			if err := json.Unmarshal(readFile(t, tc.req), &rq); err != nil {
				t.Fatal(err)
			}
			q := r.Request
			if !bytes.Equal([]byte{q.Version, q.Code, q.Param1, q.Param2, q.SlotID},
				slices.Concat(hexField(t, rq.SPDMVersion), hexField(t, rq.RequestResponseCode), hexField(t, rq.Param1), hexField(t, rq.Param2), hexField(t, rq.SlotIDParam))) {
				t.Errorf("request header %+v vs %+v", q, rq)
			}
			if !bytes.Equal(q.Nonce[:], hexField(t, rq.Nonce)) {
				t.Errorf("request nonce %x", q.Nonce)
			}
			var rs struct {
				SPDMVersion, RequestResponseCode, Param1, Param2, Nonce, Signature string
				NumberOfBlocks, MeasurementRecordLength, OpaqueLength              int
				MeasurementRecord                                                  struct {
					MeasurementBlocks map[string]struct {
						DMTFSpecMeasurementValueType int
						DMTFSpecMeasurementValueSize int
						DMTFSpecMeasurementValue     string
					}
				}
				OpaqueData struct {
					OpaqueDataField map[string]json.RawMessage
				}
			}
			if err := json.Unmarshal(readFile(t, tc.resp), &rs); err != nil {
				t.Fatal(err)
			}
			p := r.Response
			if !bytes.Equal([]byte{p.Version, p.Code, p.Param1, p.Param2},
				slices.Concat(hexField(t, rs.SPDMVersion), hexField(t, rs.RequestResponseCode), hexField(t, rs.Param1), hexField(t, rs.Param2))) {
				t.Errorf("response header")
			}
			if len(p.Blocks) != rs.NumberOfBlocks || len(p.Opaque) != rs.OpaqueLength {
				t.Errorf("blocks %d opaque %d, golden %d %d", len(p.Blocks), len(p.Opaque), rs.NumberOfBlocks, rs.OpaqueLength)
			}
			if !bytes.Equal(p.ResponderNonce[:], hexField(t, rs.Nonce)) || !bytes.Equal(p.Signature, hexField(t, rs.Signature)) {
				t.Error("responder nonce or signature differ")
			}
			if len(rs.MeasurementRecord.MeasurementBlocks) != len(p.Blocks) {
				t.Errorf("golden has %d blocks", len(rs.MeasurementRecord.MeasurementBlocks))
			}
			for _, b := range p.Blocks {
				g, ok := rs.MeasurementRecord.MeasurementBlocks[strconv.Itoa(int(b.Index))]
				if !ok || int(b.ValueType) != g.DMTFSpecMeasurementValueType || len(b.Value) != g.DMTFSpecMeasurementValueSize || !bytes.Equal(b.Value, hexField(t, g.DMTFSpecMeasurementValue)) {
					t.Errorf("block %d differs from golden", b.Index)
				}
			}
			names := map[string]uint16{
				"VBIOS_VERSION": 6, "BOARD_ID": 14, "CHIP_SKU": 15, "CHIP_SKU_MOD": 16, "PROJECT": 17, "PROJECT_SKU": 18,
				"PROJECT_SKU_MOD": 19, "DRIVER_VERSION": 3, "GPU_INFO": 4, "MSRSCNT": 12, "CPRINFO": 13, "NVDEC0_STATUS": 11,
				"FWID": 20, "PROTECTED_PCIE_STATUS": 21, "SWITCH_PDI": 22, "DEVICE_PDI": 22, "FLOORSWEPT_PORTS": 23, "DISABLED_PORTS": 23,
				"POSITION_ID": 24, "SWITCH_POSITION_ID": 24, "LOCK_SWITCH_STATUS": 25, "SWITCH_LOCK_STATUS": 25, "SWITCH_PORT": 26, "SWITCH_GPU_PDIS": 26, "OPAQUE_DATA_VERSION": 34, "FEATURE_FLAG": 36,
			}
			checked := 0
			for k, raw := range rs.OpaqueData.OpaqueDataField {
				typ, ok := names[strings.TrimPrefix(k, "OPAQUE_FIELD_ID_")]
				if !ok {
					t.Logf("golden field %s not compared", k)
					continue
				}
				data, ok := r.Field(typ)
				if !ok {
					t.Errorf("field %s (%d) missing", k, typ)
					continue
				}
				var s string
				if err := json.Unmarshal(raw, &s); err == nil {
					if !bytes.Equal(data, hexField(t, s)) {
						t.Errorf("field %s = %x, golden %s", k, data, s)
					}
					checked++
					continue
				}
				var strs []string
				if err := json.Unmarshal(raw, &strs); err == nil {
					var cat []byte
					for _, x := range strs {
						cat = append(cat, hexField(t, x)...)
					}
					// Type 26 holds the GPU PDIs, then one port byte per port.
					if k == "OPAQUE_FIELD_ID_SWITCH_PORT" {
						data = data[len(data)-len(cat):]
					}
					if !bytes.HasPrefix(data, cat) {
						t.Errorf("field %s = %x, golden %x", k, data, cat)
					}
					checked++
					continue
				}
				var nums []uint32
				if err := json.Unmarshal(raw, &nums); err != nil {
					t.Logf("golden field %s has an unexpected shape", k)
					continue
				}
				if typ != OpaqueMsrsCnt {
					t.Logf("golden field %s (a derived list) not compared", k)
				}
				if typ == OpaqueMsrsCnt {
					if len(data) != 4*len(nums) {
						t.Errorf("MSRSCNT length")
						continue
					}
					for i, n := range nums {
						if got := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24; got != n {
							t.Errorf("MSRSCNT[%d] = %d, golden %d", i, got, n)
						}
					}
					checked++
				}
			}
			if checked < 5 {
				t.Errorf("only %d opaque fields compared", checked)
			}
		})
	}
}

// NVAT evidence JSON (the nvidia/evidence vectors) verifies with the nonce
// it carries.
func TestNVATEvidenceFiles(t *testing.T) {
	v := newVerifier(t, Options{FailOnInvalidDevice: true})
	for _, f := range []string{"hopper_evidence.json", "hopper_evidence_cert_hold.json", "switch_evidence_ls10.json", "evidence_hopper_590_12.json"} {
		t.Run(f, func(t *testing.T) {
			data := readFile(t, "evidence/"+f)
			var items []struct{ Nonce string }
			if err := json.Unmarshal(data, &items); err != nil {
				t.Fatal(err)
			}
			ev, err := ParseNVATEvidence(data)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(ev)
			res, err := v.Verify(context.Background(), b, verifier.Expected{ReportData: mustHex(t, items[0].Nonce)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Claims["eat_nonce"] != items[0].Nonce {
					t.Errorf("eat_nonce %v", r.Claims["eat_nonce"])
				}
				if r.Class == "gpu" && r.Claims[ClaimFWID] != "match" {
					t.Errorf("fwid %v", r.Claims[ClaimFWID])
				}
			}
		})
	}
}

// PPCIE: 8 H100 + 4 LS10, all genuine; the PDI claims satisfy NVIDIA's
// topology rules (byte-reversed GPU link PDIs).
func TestPPCIEVectors(t *testing.T) {
	v := newVerifier(t, Options{FailOnInvalidDevice: true})
	var all []verifier.Result
	var nonce string
	for _, f := range []string{"ppcie/gpu_evidence.json", "ppcie/switch_evidence.json"} {
		data := readFile(t, f)
		var items []struct{ Nonce string }
		if err := json.Unmarshal(data, &items); err != nil {
			t.Fatal(err)
		}
		nonce = items[0].Nonce
		ev, err := ParseNVATEvidence(data)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		res, err := v.Verify(context.Background(), b, verifier.Expected{ReportData: mustHex(t, nonce)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res...)
	}
	if len(all) != 12 {
		t.Fatalf("%d results", len(all))
	}
	var gpuSet []string
	switchPDIs := map[string]bool{}
	var switchGPUSet []string
	for i, r := range all {
		c := r.Claims
		cfg := c["config"].(map[string]any)
		if r.Class == "gpu" {
			if cfg["feature_flag"] != "PPCIE" || cfg["protected_pcie_status"] != "\uFFFD" {
				t.Errorf("gpu %d feature %v ppcie %q", i, cfg["feature_flag"], cfg["protected_pcie_status"])
			}
			var set []string
			for _, p := range c["x-nvidia-gpu-switch-pdis"].([]any) {
				if p != "0000000000000000" {
					set = append(set, p.(string))
				}
			}
			slices.Sort(set)
			if len(set) != 4 {
				t.Errorf("gpu %d has %d switch PDIs", i, len(set))
			}
			if gpuSet == nil {
				gpuSet = set
			} else if !slices.Equal(gpuSet, set) {
				t.Errorf("gpu %d PDI set differs", i)
			}
			continue
		}
		switchPDIs[c["x-nvidia-switch-pdi"].(string)] = true
		var set []string
		for _, p := range c["x-nvidia-switch-gpu-pdis"].([]any) {
			set = append(set, p.(string))
		}
		slices.Sort(set)
		if len(slices.Compact(slices.Clone(set))) != 8 {
			t.Errorf("switch %d has %d distinct GPU PDIs", i, len(slices.Compact(slices.Clone(set))))
		}
		if switchGPUSet == nil {
			switchGPUSet = set
		} else if !slices.Equal(switchGPUSet, set) {
			t.Errorf("switch %d GPU PDI set differs", i)
		}
	}
	if len(switchPDIs) != 4 {
		t.Errorf("%d distinct switch PDIs", len(switchPDIs))
	}
	for _, p := range gpuSet {
		if !switchPDIs[p] {
			t.Errorf("GPU-reported switch PDI %s is not a switch's own PDI", p)
		}
	}
}

func TestEvidenceErrors(t *testing.T) {
	v := newVerifier(t, Options{})
	good := device("HOPPER", "", readReport(t, "hopperAttestationReport.txt"), readFile(t, "hopper_cert_chain_case1.txt"))
	bad := good
	bad.Arch = "AMPERE"
	for _, tc := range []struct {
		name string
		in   []byte
		want []error
	}{
		{"not json", []byte("{"), []error{ErrEvidence}},
		{"trailing json", append(evidenceJSON(t, good), []byte(" {}")...), []error{ErrEvidence}},
		{"empty list", []byte(`{"device_evidence_list":[]}`), []error{ErrEvidence}},
		{"missing list", []byte(`{}`), []error{ErrEvidence}},
		{"unknown arch", evidenceJSON(t, good, bad), []error{ErrEvidence, ErrUnsupportedArch}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.in, verifier.Expected{})
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
		})
	}
	// uuid defaults to "unknown"; arch is case-insensitive.
	good.Arch = "hopper"
	res, err := v.Verify(context.Background(), evidenceJSON(t, good), verifier.Expected{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Claims["uuid"] != "unknown" || res[0].Claims["arch"] != "Hopper" {
		t.Errorf("uuid %v arch %v", res[0].Claims["uuid"], res[0].Claims["arch"])
	}
	if _, err := ParseNVATEvidence([]byte(`{}`)); !errors.Is(err, ErrEvidence) {
		t.Errorf("NVAT object: %v", err)
	}
}
