package tpm

import (
	"testing"
)

func FuzzParseEvidence(f *testing.F) {
	f.Add(evidence(f))
	f.Add([]byte(`{"ak_public":"","quote":{"message":[1],"signature":[2],"pcrs":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseEvidence(b)
		if err != nil {
			return
		}
		if len(ev.PCRs) != pcrCount || ev.Signature == nil {
			t.Fatalf("accepted %d PCRs, signature %v", len(ev.PCRs), ev.Signature)
		}
		for i, p := range ev.PCRs {
			if len(p) != 32 {
				t.Fatalf("PCR %d has %d bytes", i, len(p))
			}
		}
	})
}
