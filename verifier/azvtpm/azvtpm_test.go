package azvtpm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/snp"
	"github.com/sigil-attestation/sigil/verifier/tdx"
)

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// newSNP uses the real SNP verifier (embedded AMD roots) at testNow.
func newSNP(t testing.TB) *SNPVerifier {
	t.Helper()
	v, err := NewSNP(SNPOptions{Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newTDXInner is the real TDX verifier (embedded Intel root, no collateral)
// at testNow.
func newTDXInner(t testing.TB) *tdx.Verifier {
	t.Helper()
	inner, err := tdx.New(tdx.Options{Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

func newTDX(t testing.TB) *TDXVerifier {
	t.Helper()
	v, err := NewTDX(TDXOptions{TDX: TDXFromVerifier(newTDXInner(t))})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hclV1Evidence builds version-1 evidence from hcl-report.bin,
// tpm-quote-v1.json and the VCEK of vcek.pem (the upstream files that
// belong together but are not packaged as evidence).
func hclV1Evidence(t testing.TB, hcl []byte) []byte {
	t.Helper()
	var q struct {
		Signature string   `json:"signature"`
		Message   string   `json:"message"`
		PCRs      []string `json:"pcrs"`
	}
	if err := json.Unmarshal(readFile(t, "az-snp-vtpm/tpm-quote-v1.json"), &q); err != nil {
		t.Fatal(err)
	}
	vcek, err := firstCertificate(readFile(t, "az-snp-vtpm/vcek.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := json.Marshal(map[string]any{
		"version":    1,
		"tpm_quote":  q,
		"hcl_report": base64.URLEncoding.EncodeToString(hcl),
		"vcek":       base64.URLEncoding.EncodeToString(vcek),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

type snpCase struct {
	name       string
	evidence   func(t testing.TB) []byte
	reportData []byte
	version    int
	pcr0       string
	tcb        [4]string // bootloader, tee, snp, microcode
	varHash    string
}

var snpCases = []snpCase{
	{
		name:       "evidence-v1",
		evidence:   func(t testing.TB) []byte { return readFile(t, "az-snp-vtpm/evidence-v1.json") },
		reportData: []byte("challenge"),
		version:    1,
		pcr0:       "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced",
		tcb:        [4]string{"4", "0", "24", "219"},
		varHash:    "af2910341dd8108360e485f1b72494255190b9cdd5ccb44b73b883037cf99f21",
	},
	{
		name:       "evidence-v2",
		evidence:   func(t testing.TB) []byte { return readFile(t, "az-snp-vtpm/evidence-v2.json") },
		reportData: []byte{}, // set in init
		version:    2,
		pcr0:       "84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7",
	},
	{
		name:       "evidence-genoa",
		evidence:   func(t testing.TB) []byte { return readFile(t, "az-snp-vtpm/evidence-genoa.json") },
		reportData: nil, // set in init
		version:    0,
		pcr0:       "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338",
		tcb:        [4]string{"10", "0", "23", "84"},
	},
	{
		name:       "hcl-report.bin+tpm-quote-v1.json+vcek.pem",
		evidence:   func(t testing.TB) []byte { return hclV1Evidence(t, readFile(t, "az-snp-vtpm/hcl-report.bin")) },
		reportData: []byte("challenge"),
		version:    1,
		pcr0:       "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be",
		tcb:        [4]string{"3", "0", "8", "115"},
		varHash:    "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac",
	},
}

const (
	v2ReportData    = "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef"
	genoaReportData = "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f"
)

func init() {
	snpCases[1].reportData, _ = hex.DecodeString(v2ReportData)
	snpCases[2].reportData, _ = hex.DecodeString(genoaReportData)
}

func TestSNPVectors(t *testing.T) {
	v := newSNP(t)
	for _, c := range snpCases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.evidence(t)
			ev, err := ParseEvidence(TEESNP, raw)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Version != c.version {
				t.Errorf("version = %d, want %d", ev.Version, c.version)
			}
			res, err := v.Verify(context.Background(), raw, verifier.Expected{ReportData: c.reportData})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(res) != 1 || res[0].Class != "cpu" {
				t.Fatalf("results = %+v", res)
			}
			cl := res[0].Claims
			if got := cl["report_data"]; got != hex.EncodeToString(c.reportData) {
				t.Errorf("report_data = %v", got)
			}
			tpm := cl["tpm"].(map[string]any)
			if len(tpm) != 24 || tpm["pcr00"] != c.pcr0 {
				t.Errorf("tpm.pcr00 = %v (%d PCRs)", tpm["pcr00"], len(tpm))
			}
			if cl["init_data"] != tpm["pcr08"] {
				t.Errorf("init_data %v != pcr08 %v", cl["init_data"], tpm["pcr08"])
			}
			if c.tcb[0] != "" {
				got := [4]string{cl["reported_tcb_bootloader"].(string), cl["reported_tcb_tee"].(string), cl["reported_tcb_snp"].(string), cl["reported_tcb_microcode"].(string)}
				if got != c.tcb {
					t.Errorf("tcb = %v, want %v", got, c.tcb)
				}
			}
			for _, k := range []string{"measurement", "policy_abi_major", "policy_abi_minor", "policy_smt_allowed", "policy_migrate_ma", "policy_debug_allowed", "policy_single_socket", "platform_tsme_enabled", "platform_smt_enabled", "tpm", "report_data", "init_data"} {
				if _, ok := cl[k]; !ok {
					t.Errorf("missing claim %q", k)
				}
			}
			if m, err := base64.StdEncoding.DecodeString(cl["measurement"].(string)); err != nil || len(m) != 48 {
				t.Errorf("measurement %v: %v", cl["measurement"], err)
			}
			if _, err := json.Marshal(cl); err != nil {
				t.Errorf("claims not JSON: %v", err)
			}
			if c.varHash != "" {
				hcl, err := ParseHCLReport(ev.HCLReport)
				if err != nil {
					t.Fatal(err)
				}
				if h := hcl.VarDataSHA256(); hex.EncodeToString(h[:]) != c.varHash {
					t.Errorf("var data hash = %x", h)
				}
			}
		})
	}
}

func TestSNPClaimValues(t *testing.T) {
	// The genoa PCR8 is non-zero; v1 PCR8 is zero.
	v := newSNP(t)
	res, err := v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-genoa.json"), verifier.Expected{ReportData: mustHex(t, genoaReportData)})
	if err != nil {
		t.Fatal(err)
	}
	pcr8 := res[0].Claims["tpm"].(map[string]any)["pcr08"].(string)
	if !strings.HasPrefix(pcr8, "16f09f1e") || !strings.HasSuffix(pcr8, "4e97207f") {
		t.Errorf("genoa pcr08 = %s", pcr8)
	}
	res, err = v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-v1.json"), verifier.Expected{ReportData: []byte("challenge")})
	if err != nil {
		t.Fatal(err)
	}
	cl := res[0].Claims
	if cl["tpm"].(map[string]any)["pcr08"] != strings.Repeat("0", 64) {
		t.Errorf("v1 pcr08 = %v", cl["tpm"].(map[string]any)["pcr08"])
	}
	if cl["policy_debug_allowed"] != "false" || cl["policy_migrate_ma"] != "false" {
		t.Errorf("policy claims = %v %v", cl["policy_debug_allowed"], cl["policy_migrate_ma"])
	}
}

func TestTDXVector(t *testing.T) {
	v := newTDX(t)
	raw := readFile(t, "az-tdx-vtpm/evidence-v1.json")
	ev, err := ParseEvidence(TEETDX, raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Version != 1 || len(ev.TDQuote) != 5006 {
		t.Fatalf("version %d, td_quote %d bytes", ev.Version, len(ev.TDQuote))
	}
	if !bytes.Equal(ev.TDQuote[4936:], make([]byte, 70)) {
		t.Error("expected 70 zero bytes of padding")
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		t.Fatal(err)
	}
	if hcl.ReportType != ReportTypeTDX {
		t.Fatalf("report type %d", hcl.ReportType)
	}
	if h := hcl.VarDataSHA256(); hex.EncodeToString(h[:]) != "9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839" {
		t.Errorf("var data hash %x", h)
	}
	res, err := v.Verify(context.Background(), raw, verifier.Expected{ReportData: []byte("challenge")})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	cl := res[0].Claims
	if cl["report_data"] != "6368616c6c656e6765" {
		t.Errorf("report_data = %v", cl["report_data"])
	}
	if got := cl["tpm"].(map[string]any)["pcr00"]; got != "782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273" {
		t.Errorf("pcr00 = %v", got)
	}
	q, ok := cl["quote"].(map[string]any)
	if !ok {
		t.Fatalf("no quote claims: %v", cl)
	}
	body := q["body"].(map[string]any)
	if body["mr_td"] != hex.EncodeToString(hcl.HardwareReport[tdReportMRTD:tdReportMRTD+48]) {
		t.Errorf("quote.body.mr_td = %v", body["mr_td"])
	}
	if h := q["header"].(map[string]any); h["tee_type"] != "81000000" || h["vendor_id"] != "939a7233f79c4ca9940a0db3957f0607" {
		t.Errorf("quote.header = %v", h)
	}
	if _, ok := body["xfam"]; !ok {
		t.Error("no quote.body.xfam")
	}
	if _, ok := cl["tcb_status"]; !ok {
		t.Errorf("no tcb_status claim")
	}
	mrTD, _, err := tdQuoteFields(ev.TDQuote)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mrTD, hcl.HardwareReport[tdReportMRTD:tdReportMRTD+48]) {
		t.Error("mr_td differs")
	}
}

func TestQuoteBin(t *testing.T) {
	q, err := DecodeBincodeQuote(readFile(t, "az-snp-vtpm/quote.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Signature string   `json:"signature"`
		Message   string   `json:"message"`
		PCRs      []string `json:"pcrs"`
	}
	if err := json.Unmarshal(readFile(t, "az-snp-vtpm/tpm-quote-v1.json"), &j); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Signature, mustHex(t, j.Signature)) || !bytes.Equal(q.Message, mustHex(t, j.Message)) || len(q.PCRs) != len(j.PCRs) {
		t.Fatal("quote.bin differs from tpm-quote-v1.json")
	}
	for i := range q.PCRs {
		if !bytes.Equal(q.PCRs[i], mustHex(t, j.PCRs[i])) {
			t.Fatalf("PCR %d differs", i)
		}
	}
	if _, err := DecodeBincodeQuote(readFile(t, "az-snp-vtpm/quote.bin")[:1169]); !errors.Is(err, ErrMalformedEvidence) {
		t.Errorf("truncated: %v", err)
	}
}

// mutateJSON decodes evidence, lets f change it and re-encodes it.
func mutateJSON(t testing.TB, raw []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mutateB64 changes bytes of a base64url member.
func mutateB64(t testing.TB, m map[string]any, key string, f func(b []byte)) {
	t.Helper()
	b, err := b64url(m[key].(string))
	if err != nil {
		t.Fatal(err)
	}
	f(b)
	m[key] = base64.URLEncoding.EncodeToString(b)
}

func mutateHexQuote(t testing.TB, m map[string]any, key string, f func(b []byte)) {
	t.Helper()
	q := m["tpm_quote"].(map[string]any)
	b := mustHex(t, q[key].(string))
	f(b)
	q[key] = hex.EncodeToString(b)
}

func TestSNPNegative(t *testing.T) {
	v := newSNP(t)
	hclBin := readFile(t, "az-snp-vtpm/hcl-report.bin")
	v1 := readFile(t, "az-snp-vtpm/evidence-v1.json")
	v2 := readFile(t, "az-snp-vtpm/evidence-v2.json")
	challenge := []byte("challenge")
	reversed := []byte("egnellahc")
	withHCL := func(f func(b []byte)) func(t testing.TB) []byte {
		return func(t testing.TB) []byte {
			b := bytes.Clone(hclBin)
			f(b)
			return hclV1Evidence(t, b)
		}
	}
	cases := []struct {
		name string
		ev   func(t testing.TB) []byte
		exp  verifier.Expected
		want error
	}{
		{"HCL 0x1A6 zeroed (reported TCB)", withHCL(func(b []byte) { b[0x1A6] = 0 }), verifier.Expected{ReportData: challenge}, ErrTCBMismatch},
		{"HCL 0x540 zeroed (AK JWK)", withHCL(func(b []byte) { b[0x540] = 0 }), verifier.Expected{ReportData: challenge}, ErrAKUnusable},
		{"HCL 0x6E0 incremented (var data)", withHCL(func(b []byte) { b[0x6E0]++ }), verifier.Expected{ReportData: challenge}, ErrVarDataBinding},
		{"HCL measurement bit (SNP signature)", withHCL(func(b []byte) { b[0x20+0x90] ^= 1 }), verifier.Expected{ReportData: challenge}, ErrSNPReport},
		{"HCL vmpl (SNP signature)", withHCL(func(b []byte) { b[0x20+0x30] = 1 }), verifier.Expected{ReportData: challenge}, ErrSNPReport},
		{"HCL magic", withHCL(func(b []byte) { b[0] = 'X' }), verifier.Expected{ReportData: challenge}, ErrHCLReport},
		{"HCL report type TDX", withHCL(func(b []byte) { b[0x4C8] = 4 }), verifier.Expected{ReportData: challenge}, ErrReportType},
		{"reversed nonce", func(testing.TB) []byte { return v1 }, verifier.Expected{ReportData: reversed}, ErrNonceMismatch},
		{"nonce padded", func(testing.TB) []byte { return v1 }, verifier.Expected{ReportData: append(bytes.Clone(challenge), 0)}, ErrNonceMismatch},
		{"no report data", func(testing.TB) []byte { return v1 }, verifier.Expected{}, ErrReportDataRequired},
		{"v2 wrong report data", func(testing.TB) []byte { return v2 }, verifier.Expected{ReportData: mustHex(t, "123abc")}, ErrUserDataMismatch},
		{"signature bit", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { mutateHexQuote(t, m, "signature", func(b []byte) { b[0] ^= 1 }) })
		}, verifier.Expected{ReportData: challenge}, ErrQuoteSignature},
		{"message bit", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { mutateHexQuote(t, m, "message", func(b []byte) { b[len(b)-1] ^= 1 }) })
		}, verifier.Expected{ReportData: challenge}, ErrQuoteSignature},
		{"PCR tampered", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) {
				p := m["tpm_quote"].(map[string]any)["pcrs"].([]any)
				p[11] = strings.Repeat("ab", 32)
			})
		}, verifier.Expected{ReportData: challenge}, ErrPCRDigest},
		{"PCR missing", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) {
				q := m["tpm_quote"].(map[string]any)
				q["pcrs"] = q["pcrs"].([]any)[:23]
			})
		}, verifier.Expected{ReportData: challenge}, ErrPCRDigest},
		{"VCEK signature bit", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { mutateB64(t, m, "vcek", func(b []byte) { b[len(b)-10] ^= 1 }) })
		}, verifier.Expected{ReportData: challenge}, ErrSNPReport},
		{"other VCEK (genoa)", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) {
				der, err := firstCertificate(readFile(t, "az-snp-vtpm/vcek-genoa.pem"))
				if err != nil {
					t.Fatal(err)
				}
				m["vcek"] = base64.URLEncoding.EncodeToString(der)
			})
		}, verifier.Expected{ReportData: challenge}, ErrTCBMismatch},
		{"init data mismatch", func(testing.TB) []byte { return v1 }, verifier.Expected{ReportData: challenge, InitDataDigest: make([]byte, 32)}, ErrInitDataMismatch},
		{"init data length", func(testing.TB) []byte { return v1 }, verifier.Expected{ReportData: challenge, InitDataDigest: make([]byte, 48)}, ErrInitDataLength},
		{"version 3", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { m["version"] = 3 })
		}, verifier.Expected{ReportData: challenge}, ErrUnsupportedVersion},
		{"version string", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { m["version"] = "1" })
		}, verifier.Expected{ReportData: challenge}, ErrMalformedEvidence},
		{"hcl_report std base64", func(t testing.TB) []byte {
			return mutateJSON(t, v1, func(m map[string]any) { m["hcl_report"] = strings.ReplaceAll(m["hcl_report"].(string), "-", "+") })
		}, verifier.Expected{ReportData: challenge}, ErrMalformedEvidence},
		{"not JSON", func(testing.TB) []byte { return []byte("[1,2]") }, verifier.Expected{ReportData: challenge}, ErrMalformedEvidence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), c.ev(t), c.exp)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// The Trustee unit-level negative cases, checked on the function that each
// one targets.
func TestHCLByteCases(t *testing.T) {
	hclBin := readFile(t, "az-snp-vtpm/hcl-report.bin")
	vcek, err := firstCertificate(readFile(t, "az-snp-vtpm/vcek.pem"))
	if err != nil {
		t.Fatal(err)
	}
	parse := func(b []byte) (*HCLReport, *snpReport) {
		h, err := ParseHCLReport(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseSNPReport(h.HardwareReport)
		if err != nil {
			t.Fatal(err)
		}
		return h, r
	}
	h, r := parse(hclBin)
	if r.version != 2 {
		t.Errorf("embedded SNP report version %d, want 2", r.version)
	}
	if err := checkVarDataBinding(h, r.reportData); err != nil {
		t.Errorf("binding: %v", err)
	}
	if err := checkVCEKBinding(r, vcek); err != nil {
		t.Errorf("VCEK binding: %v", err)
	}
	if _, err := h.AKPublic(); err != nil {
		t.Errorf("AK: %v", err)
	}

	b := bytes.Clone(hclBin)
	b[0x1A6] = 0
	_, r = parse(b)
	if err := checkVCEKBinding(r, vcek); !errors.Is(err, ErrTCBMismatch) || !strings.Contains(err.Error(), "SNP SPL") {
		t.Errorf("0x1A6: %v", err)
	}
	b = bytes.Clone(hclBin)
	b[0x6E0]++
	h, r = parse(b)
	if err := checkVarDataBinding(h, r.reportData); !errors.Is(err, ErrVarDataBinding) {
		t.Errorf("0x6E0: %v", err)
	}
	b = bytes.Clone(hclBin)
	b[0x540] = 0
	h, _ = parse(b)
	if _, err := h.AKPublic(); !errors.Is(err, ErrAKUnusable) {
		t.Errorf("0x540: %v", err)
	}
	// Chip ID.
	b = bytes.Clone(hclBin)
	b[0x20+0x1A0] ^= 1
	_, r = parse(b)
	if err := checkVCEKBinding(r, vcek); !errors.Is(err, ErrChipIDMismatch) {
		t.Errorf("chip id: %v", err)
	}
}

func TestTDXNegative(t *testing.T) {
	v := newTDX(t)
	raw := readFile(t, "az-tdx-vtpm/evidence-v1.json")
	challenge := []byte("challenge")
	cases := []struct {
		name string
		mut  func(m map[string]any)
		exp  verifier.Expected
		want error
	}{
		{"td_quote mr_td", func(m map[string]any) { mutateB64(t, m, "td_quote", func(b []byte) { b[48+136] ^= 1 }) }, verifier.Expected{ReportData: challenge}, ErrMRTDMismatch},
		{"td_quote report_data", func(m map[string]any) { mutateB64(t, m, "td_quote", func(b []byte) { b[48+520] ^= 1 }) }, verifier.Expected{ReportData: challenge}, ErrVarDataBinding},
		{"td_quote report_data[32:] (signed)", func(m map[string]any) { mutateB64(t, m, "td_quote", func(b []byte) { b[48+560] ^= 1 }) }, verifier.Expected{ReportData: challenge}, ErrTDQuote},
		{"td_quote rtmr (signed)", func(m map[string]any) { mutateB64(t, m, "td_quote", func(b []byte) { b[48+328] ^= 1 }) }, verifier.Expected{ReportData: challenge}, ErrTDQuote},
		{"td_quote tee type", func(m map[string]any) { mutateB64(t, m, "td_quote", func(b []byte) { b[4] = 0 }) }, verifier.Expected{ReportData: challenge}, ErrTDQuote},
		{"HCL TDREPORT mr_td", func(m map[string]any) { mutateB64(t, m, "hcl_report", func(b []byte) { b[0x20+tdReportMRTD] ^= 1 }) }, verifier.Expected{ReportData: challenge}, ErrMRTDMismatch},
		{"HCL AK modulus", func(m map[string]any) {
			mutateB64(t, m, "hcl_report", func(b []byte) {
				i := bytes.Index(b, []byte(`"n":"`))
				if i < 0 {
					t.Fatal("no modulus")
				}
				b[i+20] ^= 0x01 // stays a base64url character
			})
		}, verifier.Expected{ReportData: challenge}, ErrQuoteSignature},
		{"HCL vmUniqueId", func(m map[string]any) {
			mutateB64(t, m, "hcl_report", func(b []byte) {
				i := bytes.Index(b, []byte(`"vmUniqueId":"`))
				if i < 0 {
					t.Fatal("no vmUniqueId")
				}
				b[i+14] = 'F'
			})
		}, verifier.Expected{ReportData: challenge}, ErrVarDataBinding},
		{"signature bit", func(m map[string]any) { mutateHexQuote(t, m, "signature", func(b []byte) { b[100] ^= 0x40 }) }, verifier.Expected{ReportData: challenge}, ErrQuoteSignature},
		{"reversed nonce", func(map[string]any) {}, verifier.Expected{ReportData: []byte("egnellahc")}, ErrNonceMismatch},
		{"init data mismatch", func(map[string]any) {}, verifier.Expected{ReportData: challenge, InitDataDigest: bytes.Repeat([]byte{1}, 32)}, ErrInitDataMismatch},
		{"SNP evidence", func(m map[string]any) { delete(m, "td_quote") }, verifier.Expected{ReportData: challenge}, ErrMalformedEvidence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), mutateJSON(t, raw, c.mut), c.exp)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// SNP evidence given to the TDX verifier and vice versa.
	if _, err := v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-v1.json"), verifier.Expected{ReportData: challenge}); !errors.Is(err, ErrMalformedEvidence) {
		t.Errorf("snp evidence to tdx: %v", err)
	}
	if _, err := newSNP(t).Verify(context.Background(), mutateJSON(t, raw, func(m map[string]any) { m["vcek"] = m["td_quote"] }), verifier.Expected{ReportData: challenge}); !errors.Is(err, ErrReportType) {
		t.Errorf("tdx evidence to snp: %v", err)
	}
}

func TestInitData(t *testing.T) {
	// Trustee's vector: sha256(0x00*32 || 8505…) = bdda….
	digest := mustHex(t, "8505e4e25e50a27c5dc8147af88efbece627fbea55291911eff832d9ee127781")
	pcrs := make([][]byte, 24)
	for i := range pcrs {
		pcrs[i] = make([]byte, 32)
	}
	pcrs[8] = mustHex(t, "bddaccb9c52249e97a31baea61b7d91be8221a16e703d92148d04fb8e9c1dfdd")
	if err := checkInitData(pcrs, digest); err != nil {
		t.Fatal(err)
	}
	digest[0] ^= 1
	if err := checkInitData(pcrs, digest); !errors.Is(err, ErrInitDataMismatch) {
		t.Fatalf("err = %v", err)
	}
	if err := checkInitData(pcrs, nil); err != nil {
		t.Fatalf("nil digest: %v", err)
	}
}

func TestTDXFromVerifier(t *testing.T) {
	inner := newTDXInner(t)
	var gotEvidence []byte
	var gotExp verifier.Expected
	rec := verifierFunc(func(ctx context.Context, ev []byte, exp verifier.Expected) ([]verifier.Result, error) {
		gotEvidence, gotExp = ev, exp
		return inner.Verify(ctx, ev, exp)
	})
	v, err := NewTDX(TDXOptions{TDX: TDXFromVerifier(rec)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), readFile(t, "az-tdx-vtpm/evidence-v1.json"), verifier.Expected{ReportData: []byte("challenge")}); err != nil {
		t.Fatal(err)
	}
	if gotExp.ReportData != nil || gotExp.InitDataDigest != nil || !bytes.HasPrefix(gotEvidence, []byte(`{"quote":"`)) {
		t.Errorf("inner call: %.20s %+v", gotEvidence, gotExp)
	}
	empty := verifierFunc(func(context.Context, []byte, verifier.Expected) ([]verifier.Result, error) { return nil, nil })
	if _, err := TDXFromVerifier(empty).VerifyTDQuote(context.Background(), []byte{1}); err == nil {
		t.Error("no results accepted")
	}
	if _, err := NewTDX(TDXOptions{}); err == nil {
		t.Error("NewTDX without TDX succeeded")
	}
}

func TestSNPFromVerifierInjected(t *testing.T) {
	calls := 0
	inner, err := snp.New(snp.Options{Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	adapted := SNPFromVerifier(inner)
	v, err := NewSNP(SNPOptions{SNP: SNPReportVerifierFunc(func(ctx context.Context, r, vcek []byte) error {
		calls++
		return adapted.VerifySNPReport(ctx, r, vcek)
	})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-v1.json"), verifier.Expected{ReportData: []byte("challenge")}); err != nil || calls != 1 {
		t.Fatalf("err %v, calls %d", err, calls)
	}
}

type verifierFunc func(context.Context, []byte, verifier.Expected) ([]verifier.Result, error)

func (f verifierFunc) Verify(ctx context.Context, ev []byte, exp verifier.Expected) ([]verifier.Result, error) {
	return f(ctx, ev, exp)
}

func TestSNPClock(t *testing.T) {
	// The VCEK of evidence-v1 is valid 2025-01-28 → 2032-01-28.
	v, err := NewSNP(SNPOptions{Now: fixedClock(time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-v1.json"), verifier.Expected{ReportData: []byte("challenge")}); !errors.Is(err, ErrSNPReport) {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkVerifySNP(b *testing.B) {
	v := newSNP(b)
	raw := readFile(b, "az-snp-vtpm/evidence-v1.json")
	exp := verifier.Expected{ReportData: []byte("challenge")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), raw, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTDXvTPMPart(b *testing.B) {
	v := newTDX(b)
	raw := readFile(b, "az-tdx-vtpm/evidence-v1.json")
	exp := verifier.Expected{ReportData: []byte("challenge")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), raw, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEvidenceV0(b *testing.B) {
	raw := readFile(b, "az-snp-vtpm/evidence-genoa.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvidence(TEESNP, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestByteArray(t *testing.T) {
	for in, want := range map[string][]byte{
		`[]`:              {},
		` [ 0 , 255,1 ] `: {0, 255, 1},
		"[\n12\n]":        {12},
	} {
		var b byteArray
		if err := json.Unmarshal([]byte(in), &b); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%q: %v %v", in, []byte(b), err)
		}
	}
	for _, in := range []string{`[256]`, `[-1]`, `[1.5]`, `[01]`, `["1"]`, `{}`, `[1e2]`, `[1,]`, `null`} {
		var b byteArray
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("%q accepted: %v", in, []byte(b))
		}
	}
}

// No az-tdx-vtpm version-0 vector exists upstream; re-encode the v1 vector
// in the v0 shape (JSON byte arrays, "tpm_quote"/"hcl_report"/"td_quote").
func TestTDXVersion0Shape(t *testing.T) {
	ev, err := ParseEvidence(TEETDX, readFile(t, "az-tdx-vtpm/evidence-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	ints := func(b []byte) []int {
		out := make([]int, len(b))
		for i, x := range b {
			out[i] = int(x)
		}
		return out
	}
	var pcrs [][]int
	for _, p := range ev.Quote.PCRs {
		pcrs = append(pcrs, ints(p))
	}
	v0, err := json.Marshal(map[string]any{
		"tpm_quote":  map[string]any{"signature": ints(ev.Quote.Signature), "message": ints(ev.Quote.Message), "pcrs": pcrs},
		"hcl_report": ints(ev.HCLReport),
		"td_quote":   ints(ev.TDQuote),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEvidence(TEETDX, v0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 0 || !bytes.Equal(got.TDQuote, ev.TDQuote) || !bytes.Equal(got.HCLReport, ev.HCLReport) {
		t.Fatal("v0 decoding differs")
	}
	res, err := newTDX(t).Verify(context.Background(), v0, verifier.Expected{ReportData: []byte("challenge")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Claims["report_data"] != "6368616c6c656e6765" {
		t.Errorf("report_data = %v", res[0].Claims["report_data"])
	}
}

type failingCRL struct{}

func (failingCRL) CRL(context.Context, string) ([]byte, error) {
	return nil, errors.New("KDS unreachable")
}

// TestSNPCRLStatusClaim: az-snp-vtpm claims say how the ASK revocation was
// checked, as snp claims do.
func TestSNPCRLStatusClaim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		crl    snp.CRLGetter
		status string
	}{
		{"no CRL source", nil, snp.CRLSkipped},
		{"CRL source failing", failingCRL{}, snp.CRLUnavailable},
	} {
		inner, err := snp.New(snp.Options{Now: fixedClock(testNow), CRL: tc.crl})
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewSNP(SNPOptions{SNP: SNPFromVerifier(inner)})
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(context.Background(), readFile(t, "az-snp-vtpm/evidence-v1.json"), verifier.Expected{ReportData: []byte("challenge")})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := res[0].Claims["crl_status"]; got != tc.status {
			t.Errorf("%s: crl_status = %v, want %s", tc.name, got, tc.status)
		}
		if _, ok := res[0].Claims["crl_status_reason"]; ok != (tc.status == snp.CRLUnavailable) {
			t.Errorf("%s: crl_status_reason present = %v", tc.name, ok)
		}
	}
}
