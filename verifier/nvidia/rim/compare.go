package rim

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// Sources of a golden measurement.
const (
	SourceDriver = "DRIVER"
	SourceVBIOS  = "VBIOS"
)

// NVDEC0 status values (SPDM opaque data type 11).
const (
	NVDEC0Disabled byte = 0x55
	NVDEC0Enabled  byte = 0xAA
)

// msrNVDEC0 is the RIM index skipped when NVDEC0 is disabled.
const msrNVDEC0 = 35

// CompareOptions tunes Compare.
type CompareOptions struct {
	// NVDEC0Status is the report's NVDEC0_STATUS byte (opaque type 11), or
	// nil when the report has none (switches). When it is 0x55 (disabled)
	// golden RIM index 35 is skipped; any value other than 0x55 or 0xAA is an
	// error.
	NVDEC0Status *byte
	// ConflictsOverAllIndices makes the driver/VBIOS index conflict check
	// consider inactive measurements too (NVAT's rule). The default
	// considers active measurements only (nvtrust's golden-set rule).
	ConflictsOverAllIndices bool
}

// Mismatch describes one golden measurement the report does not satisfy.
type Mismatch struct {
	Index        int      `json:"index"`         // 0-based RIM index (SPDM block Index+1)
	Source       string   `json:"source"`        // SourceDriver or SourceVBIOS
	Expected     []string `json:"expected"`      // golden alternatives, lower-case hex
	ExpectedSize int      `json:"expected_size"` // golden size in bytes
	Actual       string   `json:"actual"`        // runtime value, lower-case hex ("" when the block is missing)
	ActualSize   int      `json:"actual_size"`   // runtime size in bytes
}

// Comparison is the result of Compare.
type Comparison struct {
	Match      bool       // every compared golden measurement matched
	Mismatches []Mismatch // sorted by Index
	Compared   int        // number of golden measurements compared
	Skipped    []int      // golden RIM indices skipped (MSR 35 rule)
}

// Compare checks the report's measurement blocks (SPDM block index, 1-based →
// hex value) against the active measurements of the driver and VBIOS RIMs
// (either may be nil, e.g. a switch has only a BIOS RIM). Golden RIM index i
// is compared with SPDM block i+1; it matches when the block's size equals
// the Resource size and its value equals any alternative. A driver/VBIOS
// index conflict returns a Comparison with Match=false and ErrIndexConflict.
// The RIMs must have been verified by the caller.
func Compare(driver, vbios *Manifest, measurements map[int]string, opts CompareOptions) (*Comparison, error) {
	if driver == nil && vbios == nil {
		return nil, fmt.Errorf("%w: no RIM to compare with", ErrMeasurements)
	}
	skip35 := false
	if opts.NVDEC0Status != nil {
		switch *opts.NVDEC0Status {
		case NVDEC0Disabled:
			skip35 = true
		case NVDEC0Enabled:
		default:
			return nil, fmt.Errorf("%w: NVDEC0 status 0x%02x is neither 0x55 nor 0xAA", ErrMeasurements, *opts.NVDEC0Status)
		}
	}
	runtime := make(map[int][]byte, len(measurements))
	for idx, h := range measurements {
		v, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("%w: block %d is not hex: %v", ErrMeasurements, idx, err)
		}
		runtime[idx] = v
	}

	type golden struct {
		Measurement
		source string
	}
	var set []golden
	if driver != nil {
		for _, r := range driver.Active() {
			set = append(set, golden{r, SourceDriver})
		}
	}
	if vbios != nil {
		for _, r := range vbios.Active() {
			set = append(set, golden{r, SourceVBIOS})
		}
	}
	if driver != nil && vbios != nil {
		indices := func(m *Manifest) map[int]bool {
			out := map[int]bool{}
			for _, r := range m.Measurements {
				if r.Active || opts.ConflictsOverAllIndices {
					out[r.Index] = true
				}
			}
			return out
		}
		d, v := indices(driver), indices(vbios)
		var conflicts []int
		for i := range d {
			if v[i] {
				conflicts = append(conflicts, i)
			}
		}
		if len(conflicts) > 0 {
			sort.Ints(conflicts)
			return &Comparison{}, fmt.Errorf("%w: indices %v", ErrIndexConflict, conflicts)
		}
	}
	if len(set) > len(measurements) {
		return nil, fmt.Errorf("%w: %d golden measurements but only %d report blocks", ErrMeasurements, len(set), len(measurements))
	}

	res := &Comparison{}
	for _, g := range set {
		if skip35 && g.Index == msrNVDEC0 {
			res.Skipped = append(res.Skipped, g.Index)
			continue
		}
		res.Compared++
		val, ok := runtime[g.Index+1]
		matched := false
		if ok && len(val) == g.Size {
			got := hex.EncodeToString(val)
			for _, alt := range g.Alternatives {
				if strings.EqualFold(alt, got) {
					matched = true
					break
				}
			}
		}
		if !matched {
			m := Mismatch{Index: g.Index, Source: g.source, Expected: g.Alternatives, ExpectedSize: g.Size}
			if ok {
				m.Actual, m.ActualSize = hex.EncodeToString(val), len(val)
			}
			res.Mismatches = append(res.Mismatches, m)
		}
	}
	sort.Slice(res.Mismatches, func(i, j int) bool { return res.Mismatches[i].Index < res.Mismatches[j].Index })
	res.Match = len(res.Mismatches) == 0
	return res, nil
}
