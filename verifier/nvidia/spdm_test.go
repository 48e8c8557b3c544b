package nvidia

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// Structural mutations of a synthetic report: each must be rejected with
// ErrMalformedReport (or, for lengths that still fit, parse differently).
func TestParseReportStructure(t *testing.T) {
	h := newHierarchy(t)
	d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	build := func(o nvidiatest.ReportOptions) []byte { return newReport(t, d, o) }
	base := build(nvidiatest.ReportOptions{Blocks: 2})
	const resp = RequestSize
	rec := resp + 8 // first measurement block
	set := func(b []byte, i int, v byte) []byte { c := append([]byte(nil), b...); c[i] = v; return c }
	opOff := func(b []byte) int {
		r, err := ParseReport(b)
		if err != nil {
			t.Fatal(err)
		}
		return r.SignedLen - len(r.Response.Opaque)
	}

	cases := map[string][]byte{
		"empty":                   {},
		"request only":            base[:RequestSize],
		"request version":         set(base, 0, 0x10),
		"request code":            set(base, 1, 0xE1),
		"response version":        set(base, resp, 0x12),
		"response code":           set(base, resp+1, 0x61),
		"more blocks than record": set(base, resp+4, 3),
		"record length overflow":  set(base, resp+7, 0x10),
		"non-DMTF block":          set(base, rec+1, 0x02),
		"duplicate block index":   set(base, rec+55, 1),
		"value size mismatch":     set(base, rec+5, 47),
		"signature truncated":     base[:len(base)-1],
		"opaque length overflow": func() []byte {
			c := append([]byte(nil), base...)
			binary.LittleEndian.PutUint16(c[opOff(base)-2:], 0xffff)
			return c
		}(),
		"duplicate opaque type": build(nvidiatest.ReportOptions{Blocks: 2, Opaque: []nvidiatest.TLV{{Type: 3, Data: []byte("a")}, {Type: 3, Data: []byte("b")}}}),
		"opaque type 255":       build(nvidiatest.ReportOptions{Blocks: 2, Opaque: []nvidiatest.TLV{{Type: 255, Data: nil}}}),
		"opaque header truncated": func() []byte {
			r := build(nvidiatest.ReportOptions{Blocks: 2, Opaque: []nvidiatest.TLV{{Type: 3, Data: []byte("abc")}}})
			c := append([]byte(nil), r...)
			o := opOff(r)
			binary.LittleEndian.PutUint16(c[o-2:], 6)
			return c
		}(),
		"opaque item overflow": func() []byte {
			r := build(nvidiatest.ReportOptions{Blocks: 2, Opaque: []nvidiatest.TLV{{Type: 3, Data: []byte("abc")}}})
			c := append([]byte(nil), r...)
			binary.LittleEndian.PutUint16(c[opOff(r)+2:], 9)
			return c
		}(),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseReport(b); !errors.Is(err, ErrMalformedReport) {
				t.Errorf("error = %v", err)
			}
		})
	}
	// Unknown TLV types are kept; no blocks and no opaque data parse.
	r, err := ParseReport(build(nvidiatest.ReportOptions{Measurements: [][]byte{}, Opaque: []nvidiatest.TLV{{Type: 99, Data: []byte{1}}}}))
	if err != nil || len(r.Response.Blocks) != 0 || len(r.Response.Fields) != 1 || r.Response.Fields[0].Type != 99 {
		t.Errorf("unknown TLV: %+v, %v", r, err)
	}
}

func TestConfigClaims(t *testing.T) {
	f := func(t uint16, d ...byte) OpaqueField { return OpaqueField{Type: t, Data: d} }
	got, err := configClaims([]OpaqueField{
		f(OpaqueVBIOSVersion, 0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0),
		f(OpaqueDriverVersion, '5', '5', '0', 0, 0),
		f(OpaqueNVDEC0Status, 0xAA),
		f(OpaqueProtectedPCIeStatus, 0x55),
		f(OpaqueMsrsCnt, 1, 0, 0, 0, 2, 1, 0, 0),
		f(OpaqueSwitchPDI, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0),
		f(OpaqueOpaqueDataVersion, 1, 0),
		f(OpaqueFeatureFlag, 2),
		f(OpaqueBoardID, 0xb1, 0x03),
		f(OpaqueSwitchGPUPDIs, 1), // unknown to Trustee: left out
		f(99, 1),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"vbios_version": "96.00.9f.00.01", "driver_version": "550", "nvdec0_status": "\uFFFD", "protected_pcie_status": "U",
		"measurement_count": map[string]any{"1": 1.0, "2": 258.0}, "switch_pdi": []any{"0102030405060708", "0000000000000000"},
		"opaque_data_version": 1.0, "feature_flag": "PPCIE", "board_id": "b103",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	sw, err := configClaims([]OpaqueField{f(OpaqueVBIOSVersion, []byte("96.10.55.00.01")...)}, true)
	if err != nil || sw["vbios_version"] != "96.10.55.00.01" {
		t.Errorf("switch bios %v %v", sw, err)
	}
	for _, bad := range []OpaqueField{f(OpaqueVBIOSVersion, 1), f(OpaqueMsrsCnt, 1, 2, 3), f(OpaqueSwitchPDI, 1), f(OpaqueFeatureFlag, 1, 2, 3, 4, 5, 6, 7, 8, 9)} {
		if _, err := configClaims([]OpaqueField{bad}, false); !errors.Is(err, ErrMalformedReport) {
			t.Errorf("type %d: %v", bad.Type, err)
		}
	}
	for v, n := range map[uint64]string{0: "SPT", 1: "MPT", 2: "PPCIE", 7: "unknown"} {
		if featureFlagName(v) != n {
			t.Errorf("feature flag %d", v)
		}
	}
	if lossyUTF8([]byte{'a', 0xff, 0xfe, 'b'}) != "a\uFFFD\uFFFDb" {
		t.Error("lossy UTF-8")
	}
}
