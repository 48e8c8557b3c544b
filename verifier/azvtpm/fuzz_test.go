package azvtpm

import (
	"bytes"
	"testing"
)

func FuzzParseHCLReport(f *testing.F) {
	hcl := readFile(f, "az-snp-vtpm/hcl-report.bin")
	f.Add(hcl)
	for _, name := range []string{"az-tdx-vtpm/evidence-v1.json", "az-snp-vtpm/evidence-genoa.json"} {
		for _, tee := range []string{TEESNP, TEETDX} {
			if ev, err := ParseEvidence(tee, readFile(f, name)); err == nil {
				f.Add(ev.HCLReport)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHCLReport(b)
		if err != nil {
			return
		}
		if len(h.HardwareReport) != snpReportSize && len(h.HardwareReport) != tdReportSize {
			t.Fatalf("hardware report of %d bytes", len(h.HardwareReport))
		}
		if !bytes.Equal(b[hclVarDataOffset:hclVarDataOffset+len(h.VarData)], h.VarData) {
			t.Fatal("var data not taken from its offset")
		}
		_, _ = h.AKPublic()
		_, _ = h.UserData()
		if h.ReportType == ReportTypeSNP {
			if _, err := parseSNPReport(h.HardwareReport); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzParseEvidence(f *testing.F) {
	for _, name := range []string{"az-snp-vtpm/evidence-v1.json", "az-snp-vtpm/evidence-v2.json", "az-snp-vtpm/evidence-genoa.json", "az-tdx-vtpm/evidence-v1.json"} {
		f.Add(readFile(f, name))
	}
	f.Add([]byte(`{"version":2,"tpm_quote":{"message":"00","signature":"00","pcrs":["00"]},"hcl_report":"SENMQQ==","td_quote":"AA=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tee := range []string{TEESNP, TEETDX} {
			ev, err := ParseEvidence(tee, b)
			if err != nil {
				continue
			}
			if ev.Version < 0 || ev.Version > 2 {
				t.Fatalf("version %d accepted", ev.Version)
			}
			if tee == TEESNP && ev.VCEK == nil || tee == TEETDX && ev.TDQuote == nil {
				t.Fatal("hardware evidence missing")
			}
		}
	})
}

func FuzzDecodeBincodeQuote(f *testing.F) {
	f.Add(readFile(f, "az-snp-vtpm/quote.bin"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeBincodeQuote(b)
		if err != nil {
			return
		}
		if n := 24 + len(q.Signature) + len(q.Message) + 32*len(q.PCRs); n != len(b) {
			t.Fatalf("decoded %d of %d bytes", n, len(b))
		}
	})
}
