package rim

import (
	"errors"
	"testing"
)

func verifiedManifest(t *testing.T, file string) *Manifest {
	t.Helper()
	for _, r := range realRIMs {
		if r.file == file {
			m, _, err := defaultVerifier(t).Verify(readVector(t, file), r.at)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("%s not in realRIMs", file)
	return nil
}

func nvdec0(t *testing.T, rep spdmReport) *byte {
	v, ok := rep.opaque[11]
	if !ok || len(v) != 1 {
		t.Fatalf("no NVDEC0 status: %x", v)
	}
	return &v[0]
}

func TestCompareRealGPU(t *testing.T) {
	rep := parseReport(t, "hopperAttestationReport.txt")
	if len(rep.blocks) != 64 {
		t.Fatalf("%d blocks", len(rep.blocks))
	}
	if *nvdec0(t, rep) != NVDEC0Disabled {
		t.Fatalf("NVDEC0 %x", *nvdec0(t, rep))
	}
	tests := []struct {
		file       string
		match      bool
		mismatched []int
	}{
		{"1010_0200_882_96005E0001_PROD.swidtag", true, nil},
		{"NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml", false, []int{9}},
		{"1010_0200_882_96005E0001_test_no_gpu.swidtag", false, []int{1, 2, 3, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			vbios := verifiedManifest(t, tc.file)
			res, err := Compare(nil, vbios, rep.blocks, CompareOptions{NVDEC0Status: nvdec0(t, rep)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Match != tc.match || res.Compared != 12 {
				t.Fatalf("match %v compared %d, want %v 12", res.Match, res.Compared, tc.match)
			}
			var got []int
			for _, m := range res.Mismatches {
				got = append(got, m.Index)
				if m.Source != SourceVBIOS || m.ActualSize != 48 || m.Actual != rep.blocks[m.Index+1] {
					t.Errorf("mismatch %+v", m)
				}
			}
			if len(got) != len(tc.mismatched) {
				t.Fatalf("mismatched %v, want %v", got, tc.mismatched)
			}
			for i := range got {
				if got[i] != tc.mismatched[i] {
					t.Fatalf("mismatched %v, want %v", got, tc.mismatched)
				}
			}
		})
	}
}

func TestCompareRealSwitch(t *testing.T) {
	rep := parseReport(t, "switchAttestationReport.txt")
	bios := verifiedManifest(t, "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml")
	res, err := Compare(nil, bios, rep.blocks, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Match || res.Compared != 31 {
		t.Fatalf("match %v compared %d mismatches %+v", res.Match, res.Compared, res.Mismatches)
	}
}

// TestCompareOffByOne: comparing RIM index i with SPDM block i (instead of
// i+1) must not match, proving the mapping is exercised.
func TestCompareOffByOne(t *testing.T) {
	rep := parseReport(t, "hopperAttestationReport.txt")
	shifted := map[int]string{}
	for k, v := range rep.blocks {
		shifted[k-1] = v
	}
	vbios := verifiedManifest(t, "1010_0200_882_96005E0001_PROD.swidtag")
	res, err := Compare(nil, vbios, shifted, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Match {
		t.Fatal("shifted blocks matched")
	}
}

func h(label string) string { // 48-byte hex digest for synthetic cases
	b := make([]byte, 48)
	copy(b, label)
	const hexd = "0123456789abcdef"
	out := make([]byte, 96)
	for i, c := range b {
		out[2*i], out[2*i+1] = hexd[c>>4], hexd[c&15]
	}
	return string(out)
}

func TestCompareSynthetic(t *testing.T) {
	driver := &Manifest{Measurements: []Measurement{
		{Index: 0, Active: true, Size: 48, Alternatives: []string{h("d0")}},
		{Index: 1, Active: true, Size: 48, Alternatives: []string{h("d1a"), h("d1b")}},
		{Index: 35, Active: true, Size: 48, Alternatives: []string{h("nvdec")}},
		{Index: 3, Active: false, Size: 48, Alternatives: []string{h("inactive")}},
	}}
	vbios := &Manifest{Measurements: []Measurement{
		{Index: 2, Active: true, Size: 48, Alternatives: []string{h("v2")}},
		{Index: 3, Active: true, Size: 48, Alternatives: []string{h("v3")}},
	}}
	good := map[int]string{1: h("d0"), 2: h("d1b"), 3: h("v2"), 4: h("v3"), 36: h("nvdec"), 5: h("other")}
	dis, en, bad := NVDEC0Disabled, NVDEC0Enabled, byte(0x12)
	with := func(k int, v string) map[int]string {
		m := map[int]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name     string
		driver   *Manifest
		meas     map[int]string
		opts     CompareOptions
		match    bool
		compared int
		wantErr  error
		mismatch []int
	}{
		{"all match", driver, good, CompareOptions{NVDEC0Status: &en}, true, 5, nil, nil},
		{"second alternative", driver, with(2, h("d1a")), CompareOptions{}, true, 5, nil, nil},
		{"wrong value", driver, with(3, h("zz")), CompareOptions{}, false, 5, nil, []int{2}},
		{"missing block", driver, func() map[int]string { m := with(1, h("d0")); delete(m, 1); m[9] = h("x"); return m }(), CompareOptions{}, false, 5, nil, []int{0}},
		{"size differs", driver, with(4, h("v3")[:94]), CompareOptions{}, false, 5, nil, []int{3}},
		{"upper-case runtime hex", driver, with(1, upper(h("d0"))), CompareOptions{}, true, 5, nil, nil},
		{"msr35 mismatch, NVDEC0 enabled", driver, with(36, h("no")), CompareOptions{NVDEC0Status: &en}, false, 5, nil, []int{35}},
		{"msr35 skipped, NVDEC0 disabled", driver, with(36, h("no")), CompareOptions{NVDEC0Status: &dis}, true, 4, nil, nil},
		{"bad NVDEC0", driver, good, CompareOptions{NVDEC0Status: &bad}, false, 0, ErrMeasurements, nil},
		{"bad hex", driver, with(1, "zz"), CompareOptions{}, false, 0, ErrMeasurements, nil},
		{"too few blocks", driver, map[int]string{1: h("d0")}, CompareOptions{}, false, 0, ErrMeasurements, nil},
		{"conflict over all indices", driver, good, CompareOptions{ConflictsOverAllIndices: true}, false, 0, ErrIndexConflict, nil},
		{"active conflict", &Manifest{Measurements: []Measurement{{Index: 2, Active: true, Size: 48, Alternatives: []string{h("v2")}}}}, good, CompareOptions{}, false, 0, ErrIndexConflict, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Compare(tc.driver, vbios, tc.meas, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Match != tc.match || res.Compared != tc.compared {
				t.Fatalf("match %v compared %d (mismatches %+v), want %v %d", res.Match, res.Compared, res.Mismatches, tc.match, tc.compared)
			}
			if len(res.Mismatches) != len(tc.mismatch) {
				t.Fatalf("mismatches %+v, want %v", res.Mismatches, tc.mismatch)
			}
			for i, m := range res.Mismatches {
				if m.Index != tc.mismatch[i] {
					t.Fatalf("mismatches %+v, want %v", res.Mismatches, tc.mismatch)
				}
			}
		})
	}
	if _, err := Compare(nil, nil, good, CompareOptions{}); !errors.Is(err, ErrMeasurements) {
		t.Fatalf("no RIMs: %v", err)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}
