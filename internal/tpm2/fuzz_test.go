package tpm2

import (
	"bytes"
	"testing"
)

func FuzzParseAttest(f *testing.F) {
	v := loadGeneric(f)
	msg, _, _ := loadAzure(f)
	f.Add(v.msg)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAttest(b)
		if err != nil {
			return
		}
		if a.Magic != GeneratedValue || a.Type != STAttestQuote {
			t.Fatalf("accepted magic %x type %x", a.Magic, a.Type)
		}
		for _, s := range a.PCRSelect {
			for _, i := range s.PCRs() {
				if i < 0 || i >= 8*len(s.Select) {
					t.Fatalf("PCR index %d out of range", i)
				}
			}
		}
		_ = a.CheckPCRs(AlgSHA256, map[uint16][][]byte{AlgSHA256: {bytes.Repeat([]byte{0}, 32)}})
	})
}

func FuzzParseSignature(f *testing.F) {
	v := loadGeneric(f)
	f.Add(v.sig)
	f.Add([]byte{0x00, 0x18, 0x00, 0x0c, 0x00, 0x01, 0x01, 0x00, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			return
		}
		switch s.Alg {
		case AlgRSASSA, AlgRSAPSS, AlgECDSA:
		default:
			t.Fatalf("accepted scheme %x", s.Alg)
		}
	})
}
