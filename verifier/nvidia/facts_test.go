package nvidia

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"testing"
)

// Facts the shared README states about the real reports and the root.
func TestReportFacts(t *testing.T) {
	for _, tc := range []struct {
		file             string
		blocks, nonZero  int
		signedLen, total int
	}{
		{"hopperAttestationReport.txt", 64, 26, 4021, 4117},
		{"gpu/hopperAttestationReport.txt", 64, -1, 4052 - 96, 4052},
		{"gpu/blackwellAttestationReport.txt", 64, -1, 4121 - 96, 4121},
		{"switch/switchAttestationReport.txt", 31, -1, 2168 - 96, 2168},
	} {
		r, err := ParseReport(readReport(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		nz := 0
		for _, b := range r.Response.Blocks {
			if !bytes.Equal(b.Value, make([]byte, len(b.Value))) {
				nz++
			}
		}
		if len(r.Response.Blocks) != tc.blocks || (tc.nonZero >= 0 && nz != tc.nonZero) || r.SignedLen != tc.signedLen || len(r.Raw) != tc.total || r.Trailing != 0 {
			t.Errorf("%s: %d blocks (%d non-zero), signed %d of %d, trailing %d", tc.file, len(r.Response.Blocks), nz, r.SignedLen, len(r.Raw), r.Trailing)
		}
	}
	roots, err := DefaultRoots()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(roots[0].Raw)
	if got := hex.EncodeToString(sum[:]); got != "72be15b8b2c8d3f482f84237a6fcc45b8a1354e8" {
		t.Errorf("root SHA-1 %s", got)
	}
	if roots[0].Subject.CommonName != "NVIDIA Device Identity CA" {
		t.Errorf("root CN %q", roots[0].Subject.CommonName)
	}
}
