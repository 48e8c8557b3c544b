package rim

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// spdmReport holds what the measurement tests need from an SPDM 1.1
// GET_MEASUREMENTS request + MEASUREMENTS response (nvidia.md §1.1, §1.2).
type spdmReport struct {
	blocks map[int]string // SPDM block index (1-based) -> hex value
	opaque map[uint16][]byte
}

// parseReport is a minimal structural parser used only by the tests.
func parseReport(t testing.TB, name string) spdmReport {
	t.Helper()
	raw, err := hex.DecodeString(strings.TrimSpace(string(readVector(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	const reqLen = 37
	resp := raw[reqLen:]
	n := int(resp[4])
	l1 := int(resp[5]) | int(resp[6])<<8 | int(resp[7])<<16
	rec := resp[8 : 8+l1]
	rep := spdmReport{blocks: map[int]string{}, opaque: map[uint16][]byte{}}
	for i := 0; i < n; i++ {
		idx := int(rec[0])
		size := int(binary.LittleEndian.Uint16(rec[2:4]))
		m := rec[4 : 4+size]
		vsize := int(binary.LittleEndian.Uint16(m[1:3]))
		rep.blocks[idx] = hex.EncodeToString(m[3 : 3+vsize])
		rec = rec[4+size:]
	}
	off := 8 + l1 + 32
	l2 := int(binary.LittleEndian.Uint16(resp[off:]))
	op := resp[off+2 : off+2+l2]
	for len(op) >= 4 {
		typ := binary.LittleEndian.Uint16(op)
		sz := int(binary.LittleEndian.Uint16(op[2:]))
		rep.opaque[typ] = op[4 : 4+sz]
		op = op[4+sz:]
	}
	return rep
}
