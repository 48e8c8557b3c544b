package eventlog

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseCCEL checks that arbitrary input never panics, that errors wrap
// ErrMalformed, and that an accepted log replays and serialises.
func FuzzParseCCEL(f *testing.F) {
	for _, b := range blobs {
		data := readBlob(f, b.name)
		// Seed with the log plus a little padding; the full 1 MiB region
		// only slows the fuzzer down.
		f.Add(data[:min(len(data), b.size+16)])
	}
	f.Add(specIDHeader(AlgSize{AlgSHA256, 32}, AlgSize{AlgSHA384, 48}, AlgSize{AlgSM3, 32}))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseCCEL(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if l.Size() > len(data) {
			t.Fatalf("Size %d > input %d", l.Size(), len(data))
		}
		if r, err := l.Replay(); err == nil {
			if err := l.VerifyRTMRs(r); err != nil {
				t.Fatalf("log does not verify against its own replay: %v", err)
			}
		} else if !errors.Is(err, ErrNoSHA384) {
			t.Fatalf("Replay: %v", err)
		}
		if _, err := json.Marshal(l.Claims()); err != nil {
			t.Fatalf("claims do not marshal: %v", err)
		}
		l2, err := ParseCCEL(data[:l.Size()])
		if err != nil || len(l2.Events()) != len(l.Events()) {
			t.Fatalf("re-parse of the log region: %v", err)
		}
	})
}

func BenchmarkParseReplayGrub(b *testing.B) {
	data := readBlob(b, "CCEL_data_grub")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseCCEL(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Replay(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseReplayClaimsGrub(b *testing.B) {
	data := readBlob(b, "CCEL_data_grub")
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseCCEL(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Replay(); err != nil {
			b.Fatal(err)
		}
		_ = l.Claims()
	}
}
