package tdx

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/eventlog"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/tdx/pcs"
)

// Clocks inside the PCK chain validity windows (README: quote 4 leaf
// 2023-02-07 → 2030-02-07, quote 6 leaf 2025-04-08 → 2032-04-08).
var (
	clock4 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	clock6 = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func evidenceJSON(t testing.TB, quote, ccel []byte) []byte {
	t.Helper()
	m := map[string]any{"quote": base64.StdEncoding.EncodeToString(quote), "cc_eventlog": nil}
	if ccel != nil {
		m["cc_eventlog"] = base64.StdEncoding.EncodeToString(ccel)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultRoot(t *testing.T) {
	root, err := DefaultRoot()
	if err != nil {
		t.Fatal(err)
	}
	if root.Subject.CommonName != "Intel SGX Root CA" {
		t.Errorf("subject %q", root.Subject.CommonName)
	}
	// The embedded root is the last certificate of the real quotes' chains.
	q, err := ParseQuote(readTestdata(t, "tdx_quote_4.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(q.PCKChainPEM, intelSGXRootCAPEM) {
		t.Error("embedded root is not the root in tdx_quote_4.dat's chain")
	}
	if got := rootKeyID([]*x509.Certificate{root}); got != "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993" {
		t.Errorf("root_key_id %s", got)
	}
}

func TestParseQuoteVectors(t *testing.T) {
	tests := []struct {
		file                   string
		size                   int
		qeISVSVN               uint16
		tcbSVN                 string
		debug                  bool
		mrTDPrefix, rdPrefix   string
		mrConfigPrefix         string
		rtmr0Prefix            string
		rtmr3Zero, rdTailZeros bool
	}{
		{
			file: "tdx_quote_4.dat", size: 4936, qeISVSVN: 4, tcbSVN: "03000500000000000000000000000000", debug: true,
			mrTDPrefix: "705ee938", rdPrefix: "7c71fe2c", mrConfigPrefix: "00000000", rtmr0Prefix: "e940da7c", rtmr3Zero: true,
		},
		{
			file: "tdx_quote_6.dat", size: 4936, qeISVSVN: 7, tcbSVN: "05030200", debug: false,
			rdPrefix: "26cae1c7", mrConfigPrefix: "889abf47", rtmr0Prefix: "395aefe7", rtmr3Zero: true, rdTailZeros: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readTestdata(t, tt.file)
			q, err := ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			if q.Header.Version != 4 || q.Size != tt.size || len(q.SignedData) != 48+584 {
				t.Errorf("version %d size %d signed %d", q.Header.Version, q.Size, len(q.SignedData))
			}
			if q.QEReport.ISVSVN != tt.qeISVSVN || q.QEReport.ISVProdID != 2 {
				t.Errorf("QE isvsvn %d prodid %d", q.QEReport.ISVSVN, q.QEReport.ISVProdID)
			}
			if !strings.HasPrefix(hex.EncodeToString(q.QEReport.MRSigner[:]), "dc9e2a7c") {
				t.Errorf("QE mrsigner %x", q.QEReport.MRSigner)
			}
			b := &q.Body
			checkPrefix := func(name string, v []byte, p string) {
				if !strings.HasPrefix(hex.EncodeToString(v), p) {
					t.Errorf("%s = %x, want prefix %s", name, v, p)
				}
			}
			checkPrefix("tee_tcb_svn", b.TeeTCBSVN[:], tt.tcbSVN)
			checkPrefix("mr_td", b.MRTD[:], tt.mrTDPrefix)
			checkPrefix("report_data", b.ReportData[:], tt.rdPrefix)
			checkPrefix("mr_config_id", b.MRConfigID[:], tt.mrConfigPrefix)
			checkPrefix("rtmr_0", b.RTMR[0][:], tt.rtmr0Prefix)
			if tt.rtmr3Zero && b.RTMR[3] != [48]byte{} {
				t.Error("rtmr_3 not zero")
			}
			// A SHA-384 digest (ending 95b32cfd) zero-padded to 64 bytes.
			if tt.rdTailZeros && (!bytes.Equal(b.ReportData[48:], make([]byte, 16)) || hex.EncodeToString(b.ReportData[44:48]) != "95b32cfd") {
				t.Error("report_data tail not zero")
			}
			if got := b.TDAttributes[0]&1 == 1; got != tt.debug {
				t.Errorf("debug %v", got)
			}
		})
	}
}

func TestPCKExtensionsVectors(t *testing.T) {
	tests := []struct {
		file, fmspc string
		pcesvn      uint16
		sgxType     int
		comps       []byte
		clock       time.Time
	}{
		{file: "tdx_quote_4.dat", fmspc: "50806f000000", pcesvn: 11, sgxType: 1, clock: clock4},
		{file: "tdx_quote_6.dat", fmspc: "00a06d080000", pcesvn: 11, sgxType: 2, comps: []byte{2, 2, 7, 7, 4, 1, 0, 2, 0}, clock: clock6},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v := newVerifier(t, Options{Now: fixed(tt.clock)})
			vq, err := v.VerifyQuote(context.Background(), readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			x := vq.PCK
			if hex.EncodeToString(x.FMSPC) != tt.fmspc || hex.EncodeToString(x.PCEID) != "0000" || x.PCESVN != tt.pcesvn || x.SGXType != tt.sgxType {
				t.Errorf("fmspc %x pceid %x pcesvn %d type %d", x.FMSPC, x.PCEID, x.PCESVN, x.SGXType)
			}
			if tt.comps != nil && !bytes.HasPrefix(x.TCBComponents[:], tt.comps) {
				t.Errorf("components %v", x.TCBComponents)
			}
			if x.CPUSVN != x.TCBComponents {
				t.Errorf("cpusvn %x != components %x", x.CPUSVN, x.TCBComponents)
			}
			if len(x.PPID) != 16 || len(x.PlatformInstanceID) != 16 || x.DynamicPlatform == nil || x.CachedKeys == nil || x.SMTEnabled == nil {
				t.Errorf("optional fields: %+v", x)
			}
			if len(vq.Chain) != 3 || vq.Chain[1].Subject.CommonName != "Intel SGX PCK Platform CA" || vq.Chain[2].Subject.CommonName != "Intel SGX Root CA" {
				t.Errorf("chain %v", vq.Chain)
			}
			p := PlatformTCB(vq)
			if !bytes.Equal(p.FMSPC, x.FMSPC) || p.PCESVN != tt.pcesvn || p.TeeTCBSVN != vq.Quote.Body.TeeTCBSVN || p.QEISVSVN != vq.Quote.QEReport.ISVSVN || p.QEISVPRODID != 2 || p.QEMRSIGNER != vq.Quote.QEReport.MRSigner {
				t.Errorf("platform TCB %+v", p)
			}
		})
	}
}

func TestPCKExtensionsSynthetic(t *testing.T) {
	full := defaultSGXExt()
	processor := defaultSGXExt()
	processor.platformInstance, processor.config, processor.sgxType = nil, nil, 0
	shortFMSPC := defaultSGXExt()
	shortFMSPC.fmspc = []byte{1, 2}

	x, err := parseSGXExtension(sgxExtDER(t, full))
	if err != nil {
		t.Fatal(err)
	}
	if x.PCESVN != 13 || x.SGXType != 1 || *x.DynamicPlatform != true || *x.CachedKeys != false || *x.SMTEnabled != true || x.TCBComponents[0] != 3 {
		t.Errorf("%+v", x)
	}
	x, err = parseSGXExtension(sgxExtDER(t, processor))
	if err != nil {
		t.Fatal(err)
	}
	if x.PlatformInstanceID != nil || x.DynamicPlatform != nil || x.SGXType != 0 {
		t.Errorf("processor CA variant: %+v", x)
	}
	for name, der := range map[string][]byte{
		"garbage":     {0x30, 0x03, 0x01, 0x02},
		"empty":       nil,
		"short fmspc": sgxExtDER(t, shortFMSPC),
	} {
		if _, err := parseSGXExtension(der); !errors.Is(err, ErrPCKExtension) {
			t.Errorf("%s: err %v, want ErrPCKExtension", name, err)
		}
	}
}

// TestVerifyGenuine: both real quotes verify; claims carry what the README
// says a correct verifier concludes.
func TestVerifyGenuine(t *testing.T) {
	tests := []struct {
		file     string
		clock    time.Time
		debug    bool
		sgxType  string
		initData string
	}{
		{"tdx_quote_4.dat", clock4, true, "Scalable", strings.Repeat("0", 96)},
		{"tdx_quote_6.dat", clock6, false, "Scalable with Integrity", "889abf47"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readTestdata(t, tt.file)
			v := newVerifier(t, Options{Now: fixed(tt.clock)})
			res, err := v.Verify(context.Background(), evidenceJSON(t, raw, nil), verifier.Expected{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].Class != "cpu" {
				t.Fatalf("results %+v", res)
			}
			c := res[0].Claims
			if c["td_attributes"].(map[string]any)["debug"] != tt.debug {
				t.Errorf("debug %v", c["td_attributes"])
			}
			if c["sgx_type"] != tt.sgxType || c["tcb_status"] != "Unknown" || c["tcb_status_reason"] == "" {
				t.Errorf("sgx_type %v tcb_status %v (%v)", c["sgx_type"], c["tcb_status"], c["tcb_status_reason"])
			}
			if !strings.HasPrefix(c["init_data"].(string), tt.initData) {
				t.Errorf("init_data %v", c["init_data"])
			}
			if _, ok := c["uefi_event_logs"]; ok {
				t.Error("uefi_event_logs without an event log")
			}
			if c["root_key_id"] != "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993" {
				t.Errorf("root_key_id %v", c["root_key_id"])
			}
			if _, err := json.Marshal(c); err != nil {
				t.Errorf("claims not JSON-encodable: %v", err)
			}
		})
	}
}

// flipBase64 changes one base64 character of the PEM text at pos.
func flipBase64(b []byte, pos int) {
	if b[pos] == 'A' {
		b[pos] = 'B'
	} else {
		b[pos] = 'A'
	}
}

func TestVerifyTampered(t *testing.T) {
	orig := readTestdata(t, "tdx_quote_6.dat")
	q, err := ParseQuote(orig)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets in the v4 layout.
	const (
		body      = headerSize
		sigData   = headerSize + bodySizeTDX10 + 4
		attKey    = sigData + 64
		qeReport  = attKey + 64 + 6
		qeSig     = qeReport + sgxReportSize
		qeAuth    = qeSig + 64 + 2
		pemOffset = qeAuth + 32 + 6
	)
	if !bytes.Equal(orig[pemOffset:pemOffset+27], []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("PEM offset wrong: %q", orig[pemOffset:pemOffset+27])
	}
	interStart := pemOffset + bytes.Index(q.PCKChainPEM[10:], []byte("-----BEGIN")) + 10
	tests := []struct {
		name   string
		mutate func(b []byte)
		want   error
	}{
		{"report_data byte", func(b []byte) { b[body+520] ^= 1 }, ErrQuoteSignature},
		{"mr_td byte", func(b []byte) { b[body+136] ^= 0x80 }, ErrQuoteSignature},
		{"header user_data", func(b []byte) { b[30] ^= 1 }, ErrQuoteSignature},
		{"quote signature", func(b []byte) { b[sigData+5] ^= 1 }, ErrQuoteSignature},
		{"attestation key", func(b []byte) { b[attKey+3] ^= 1 }, ErrQEReportData},
		{"QE report byte", func(b []byte) { b[qeReport+10] ^= 1 }, ErrQEReportSignature},
		{"QE report signature", func(b []byte) { b[qeSig+40] ^= 1 }, ErrQEReportSignature},
		{"QE auth data", func(b []byte) { b[qeAuth+1] ^= 1 }, ErrQEReportData},
		{"PCK leaf cert byte", func(b []byte) { flipBase64(b, pemOffset+300) }, ErrPCKChain},
		{"PCK intermediate cert byte", func(b []byte) { flipBase64(b, interStart+200) }, ErrPCKChain},
		{"body type to SGX", func(b []byte) { b[4] = 0 }, ErrUnsupportedQuote},
		{"non-zero padding", func(b []byte) { b[len(b)-1] = 1 }, ErrMalformedQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			tt.mutate(b)
			v := newVerifier(t, Options{Now: fixed(clock6)})
			_, err := v.Verify(context.Background(), evidenceJSON(t, b, nil), verifier.Expected{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyClockAndRoots(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_4.dat")
	ctx := context.Background()
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	v := newVerifier(t, Options{Now: func() time.Time { return *now.Load() }})

	set(time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)) // before the leaf
	if _, err := v.VerifyQuote(ctx, raw); !errors.Is(err, ErrPCKChain) {
		t.Errorf("2022: err %v", err)
	}
	set(clock4)
	if _, err := v.VerifyQuote(ctx, raw); err != nil {
		t.Fatalf("2025: %v", err)
	}
	if v.cache.Len() != 1 {
		t.Errorf("cache size %d", v.cache.Len())
	}
	// The cached chain must still be checked against the clock.
	set(time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC))
	if _, err := v.VerifyQuote(ctx, raw); !errors.Is(err, ErrPCKChain) {
		t.Errorf("2030 (cached): err %v", err)
	}

	// A different trust anchor rejects Intel's chain.
	pki := newTestPKI(t, sgxExtDER(t, defaultSGXExt()))
	other := newVerifier(t, Options{Now: fixed(clock4), TrustedRoots: []*x509.Certificate{pki.root}})
	if _, err := other.VerifyQuote(ctx, raw); !errors.Is(err, ErrPCKChain) {
		t.Errorf("foreign root: err %v", err)
	}
}

func TestChainCacheBounded(t *testing.T) {
	ctx := context.Background()
	v := newVerifier(t, Options{Now: fixed(clock6), ChainCacheSize: 1})
	for _, f := range []string{"tdx_quote_4.dat", "tdx_quote_6.dat", "tdx_quote_4.dat"} {
		if _, err := v.VerifyQuote(ctx, readTestdata(t, f)); err != nil {
			t.Fatal(err)
		}
		if n := v.cache.Len(); n != 1 {
			t.Fatalf("cache holds %d chains, bound 1", n)
		}
	}
	nc := newVerifier(t, Options{Now: fixed(clock6), ChainCacheSize: -1})
	if _, err := nc.VerifyQuote(ctx, readTestdata(t, "tdx_quote_6.dat")); err != nil || nc.cache.Len() != 0 {
		t.Fatalf("no-cache verifier: err %v, cached %d", err, nc.cache.Len())
	}
}

type revocationFunc func(ctx context.Context, chain []*x509.Certificate) error

func (f revocationFunc) CheckRevocation(ctx context.Context, chain []*x509.Certificate) error {
	return f(ctx, chain)
}

func TestRevocationHook(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_6.dat")
	var calls int
	revoked := false
	v := newVerifier(t, Options{Now: fixed(clock6), Revocation: revocationFunc(func(_ context.Context, chain []*x509.Certificate) error {
		calls++
		if len(chain) != 3 {
			t.Errorf("chain length %d", len(chain))
		}
		if revoked {
			return errors.New("serial 1234 revoked")
		}
		return nil
	})})
	ctx := context.Background()
	if _, err := v.VerifyQuote(ctx, raw); err != nil {
		t.Fatal(err)
	}
	revoked = true
	if _, err := v.VerifyQuote(ctx, raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked (cached chain): err %v", err)
	}
	if calls != 2 {
		t.Errorf("hook called %d times, want 2", calls)
	}
}

func TestBinding(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_6.dat")
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	rd48 := bytes.Clone(q.Body.ReportData[:48]) // a SHA-384 runtime-data digest
	mrcfg := bytes.Clone(q.Body.MRConfigID[:])
	wrong := bytes.Clone(rd48)
	wrong[0] ^= 1
	tests := []struct {
		name string
		exp  verifier.Expected
		want error
	}{
		{"nothing checked", verifier.Expected{}, nil},
		{"48-byte digest padded", verifier.Expected{ReportData: rd48}, nil},
		{"64 bytes exact", verifier.Expected{ReportData: q.Body.ReportData[:]}, nil},
		{"longer truncated", verifier.Expected{ReportData: append(bytes.Clone(q.Body.ReportData[:]), 9, 9)}, nil},
		{"wrong report data", verifier.Expected{ReportData: wrong}, ErrReportDataMismatch},
		{"empty report data", verifier.Expected{ReportData: []byte{}}, ErrReportDataMismatch},
		{"32-byte prefix is padded, not a prefix match", verifier.Expected{ReportData: rd48[:32]}, ErrReportDataMismatch},
		{"init data", verifier.Expected{ReportData: rd48, InitDataDigest: mrcfg}, nil},
		{"init data 32-byte prefix is padded, not a prefix match", verifier.Expected{InitDataDigest: mrcfg[:32]}, ErrInitDataMismatch},
		{"wrong init data", verifier.Expected{InitDataDigest: append([]byte{mrcfg[0] ^ 1}, mrcfg[1:]...)}, ErrInitDataMismatch},
	}
	v := newVerifier(t, Options{Now: fixed(clock6)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), evidenceJSON(t, raw, nil), tt.exp)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEvidenceJSON(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_6.dat")
	q64 := base64.StdEncoding.EncodeToString(raw)
	v := newVerifier(t, Options{Now: fixed(clock6)})
	tests := []struct {
		name     string
		evidence string
		want     error
	}{
		{"legacy aa_eventlog ignored", `{"quote":"` + q64 + `","cc_eventlog":null,"aa_eventlog":"INIT sha384/abc"}`, nil},
		{"no cc_eventlog", `{"quote":"` + q64 + `"}`, nil},
		{"empty cc_eventlog", `{"quote":"` + q64 + `","cc_eventlog":""}`, nil},
		{"no quote", `{"cc_eventlog":null}`, ErrEvidence},
		{"empty quote", `{"quote":""}`, ErrEvidence},
		{"bad base64", `{"quote":"!!!"}`, ErrEvidence},
		{"bad cc_eventlog base64", `{"quote":"` + q64 + `","cc_eventlog":"%%"}`, ErrEvidence},
		{"not JSON", `quote`, ErrEvidence},
		{"quote not a string", `{"quote":[1,2]}`, ErrEvidence},
		{"garbage quote", `{"quote":"AAAA"}`, ErrMalformedQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), []byte(tt.evidence), verifier.Expected{})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestClaimsGolden: the claim builder alone reproduces Trustee's
// parse_tdx_claims_expected.json for tdx_quote_4.dat + CCEL_data.
func TestClaimsGolden(t *testing.T) {
	v := newVerifier(t, Options{Now: fixed(clock4)})
	vq, err := v.VerifyQuote(context.Background(), readTestdata(t, "tdx_quote_4.dat"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := eventlog.ParseCCEL(readTestdata(t, "CCEL_data"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(BuildClaims(vq.Quote, vq.PCK, log))
	if err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readTestdata(t, "parse_tdx_claims_expected.json"), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		g, _ := json.MarshalIndent(gotV, "", " ")
		w, _ := json.MarshalIndent(wantV, "", " ")
		t.Errorf("claims differ from the golden file\ngot:  %.3000s\nwant: %.3000s", g, w)
	}
}

// TestEventLogEnforced: the README says CCEL_data does not replay to quote
// 4's RTMRs, so full verification must fail the event-log check.
func TestEventLogEnforced(t *testing.T) {
	v := newVerifier(t, Options{Now: fixed(clock4)})
	ev := evidenceJSON(t, readTestdata(t, "tdx_quote_4.dat"), readTestdata(t, "CCEL_data"))
	_, err := v.Verify(context.Background(), ev, verifier.Expected{})
	if !errors.Is(err, ErrEventLog) {
		t.Fatalf("err = %v, want ErrEventLog", err)
	}
	if !strings.Contains(err.Error(), "RTMR0") || !strings.Contains(err.Error(), "2dc712306a963ead") {
		t.Errorf("error does not name the RTMR / replayed value: %v", err)
	}
	ev = evidenceJSON(t, readTestdata(t, "tdx_quote_4.dat"), []byte("not an event log"))
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); !errors.Is(err, ErrEventLog) {
		t.Fatalf("garbage log: err = %v, want ErrEventLog", err)
	}
}

// TestEventLogMatching: a (synthetic) quote whose RTMRs are the replay of
// CCEL_data verifies with the log and carries uefi_event_logs; changing
// any RTMR, including the event-less RTMR3, fails.
func TestEventLogMatching(t *testing.T) {
	ccel := readTestdata(t, "CCEL_data")
	log, err := eventlog.ParseCCEL(ccel)
	if err != nil {
		t.Fatal(err)
	}
	rtmrs, err := log.Replay()
	if err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t, sgxExtDER(t, defaultSGXExt()))
	v := newVerifier(t, Options{Now: fixed(testEpoch.AddDate(1, 0, 0)), TrustedRoots: []*x509.Certificate{pki.root}})
	for i := -1; i < 4; i++ {
		body := make([]byte, bodySizeTDX10)
		for r := range 4 {
			copy(body[328+48*r:], rtmrs[r])
		}
		if i >= 0 {
			body[328+48*i+47] ^= 1
		}
		raw := buildQuote(t, pki, quoteOpts{version: 4, body: body})
		res, err := v.Verify(context.Background(), evidenceJSON(t, raw, ccel), verifier.Expected{})
		if i >= 0 {
			if !errors.Is(err, ErrEventLog) {
				t.Errorf("RTMR%d changed: err = %v, want ErrEventLog", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		logs, ok := res[0].Claims["uefi_event_logs"].([]any)
		if !ok || len(logs) != 5 {
			t.Errorf("uefi_event_logs = %T with %d entries, want 5", res[0].Claims["uefi_event_logs"], len(logs))
		}
	}
}

func TestQuoteV5Synthetic(t *testing.T) {
	pki := newTestPKI(t, sgxExtDER(t, defaultSGXExt()))
	ctx := context.Background()
	v := newVerifier(t, Options{Now: fixed(testEpoch.AddDate(1, 0, 0)), TrustedRoots: []*x509.Certificate{pki.root}})
	tests := []struct {
		name     string
		opts     quoteOpts
		typ, siz string
		tdx15    bool
	}{
		{"v5 TDX 1.5", quoteOpts{version: 5, bodyType: BodyTypeTDX15, qeISVSVN: 6, auth: []byte("auth")}, "0300", "88020000", true},
		{"v5 TDX 1.0", quoteOpts{version: 5, bodyType: BodyTypeTDX10, qeISVSVN: 6}, "0200", "48020000", false},
		{"v4", quoteOpts{version: 4, qeISVSVN: 4, auth: make([]byte, 32)}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := buildQuote(t, pki, tt.opts)
			res, err := v.Verify(ctx, evidenceJSON(t, raw, nil), verifier.Expected{})
			if err != nil {
				t.Fatal(err)
			}
			c := res[0].Claims
			quote := c["quote"].(map[string]any)
			body := quote["body"].(map[string]any)
			if tt.typ != "" {
				if quote["type"] != tt.typ || quote["size"] != tt.siz {
					t.Errorf("type %v size %v", quote["type"], quote["size"])
				}
			} else if _, ok := quote["type"]; ok {
				t.Error("v4 quote has a type claim")
			}
			_, has2 := body["tee_tcb_svn2"]
			_, hasS := body["mr_servicetd"]
			if has2 != tt.tdx15 || hasS != tt.tdx15 {
				t.Errorf("tee_tcb_svn2 %v mr_servicetd %v", has2, hasS)
			}
			if tt.tdx15 {
				// The patterned body puts byte i at offset i.
				if body["tee_tcb_svn2"] != hex.EncodeToString([]byte{0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57}) {
					t.Errorf("tee_tcb_svn2 %v", body["tee_tcb_svn2"])
				}
			}
			wantVer := map[uint16]string{4: "0400", 5: "0500"}[tt.opts.version]
			if quote["header"].(map[string]any)["version"] != wantVer {
				t.Errorf("version %v", quote["header"])
			}
			if c["platform_instance_id"] != "0f0e0d0c0b0a09080706050403020100" {
				t.Errorf("platform_instance_id %v", c["platform_instance_id"])
			}
			if c["is_dynamic_platform"] != true || c["is_cached_keys"] != false || c["is_smt_enabled"] != true || c["sgx_type"] != "Scalable" {
				t.Errorf("pck claims %v %v %v %v", c["is_dynamic_platform"], c["is_cached_keys"], c["is_smt_enabled"], c["sgx_type"])
			}
			// Tamper the TDX 1.5 tail / the v5 descriptor: signed too.
			pq, err := ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, off := range []int{len(pq.SignedData) - 1, headerSize + 1} {
				if tt.opts.version != 5 {
					break
				}
				b := bytes.Clone(raw)
				b[off] ^= 1
				if _, err := v.VerifyQuote(ctx, b); err == nil {
					t.Errorf("tampered byte %d accepted", off)
				}
			}
		})
	}

	// Processor-CA style leaf (no platform instance id, no config) and a
	// leaf without the SGX extension.
	proc := defaultSGXExt()
	proc.platformInstance, proc.config = nil, nil
	pp := newTestPKI(t, sgxExtDER(t, proc))
	vp := newVerifier(t, Options{Now: fixed(testEpoch.AddDate(1, 0, 0)), TrustedRoots: []*x509.Certificate{pp.root}})
	res, err := vp.Verify(ctx, evidenceJSON(t, buildQuote(t, pp, quoteOpts{version: 4}), nil), verifier.Expected{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"platform_instance_id", "is_dynamic_platform", "is_cached_keys", "is_smt_enabled"} {
		if _, ok := res[0].Claims[k]; ok {
			t.Errorf("claim %s present without the certificate field", k)
		}
	}
	// QE identity: another signer, the SGX QE product, a debug QE.
	for name, o := range map[string]quoteOpts{
		"foreign MRSIGNER": {version: 4, mrsigner: make([]byte, 32)},
		"ISVPRODID 1":      {version: 4, prodID: 1},
		"debug QE":         {version: 4, qeAttr0: 0x13},
	} {
		if _, err := vp.VerifyQuote(ctx, buildQuote(t, pp, o)); !errors.Is(err, ErrQEIdentity) {
			t.Errorf("%s: err %v, want ErrQEIdentity", name, err)
		}
	}
	if _, err := vp.VerifyQuote(ctx, buildQuote(t, pp, quoteOpts{version: 4, qeAttr0: 0x11})); err != nil {
		t.Errorf("production QE attributes rejected: %v", err)
	}
	np := newTestPKI(t, nil)
	vn := newVerifier(t, Options{Now: fixed(testEpoch.AddDate(1, 0, 0)), TrustedRoots: []*x509.Certificate{np.root}})
	if _, err := vn.VerifyQuote(ctx, buildQuote(t, np, quoteOpts{version: 4})); !errors.Is(err, ErrPCKExtension) {
		t.Errorf("leaf without SGX extension: err %v", err)
	}
}

func TestParseQuoteTruncatedAndGarbage(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_4.dat")
	for n := 0; n < 4936; n++ {
		if _, err := ParseQuote(raw[:n]); err == nil {
			t.Fatalf("truncated quote of %d bytes accepted", n)
		} else if !errors.Is(err, ErrMalformedQuote) && !errors.Is(err, ErrUnsupportedQuote) {
			t.Fatalf("truncated %d: unexpected error class %v", n, err)
		}
	}
	if _, err := ParseQuote(append(bytes.Clone(raw), make([]byte, 100)...)); err != nil {
		t.Errorf("zero padding rejected: %v", err)
	}
	// Corrupt the length fields.
	for _, off := range []int{headerSize + bodySizeTDX10, headerSize + bodySizeTDX10 + 4 + 128 + 2, 1252, 1254} {
		for _, val := range []byte{0x00, 0xff} {
			b := bytes.Clone(raw)
			b[off], b[off+1] = val, val
			if _, err := ParseQuote(b); err == nil {
				t.Errorf("length at %d set to %#x accepted", off, val)
			}
		}
	}
	garbage := bytes.Repeat([]byte{0xa5}, 5000)
	if _, err := ParseQuote(garbage); err == nil {
		t.Error("garbage accepted")
	}
}

// fakeEvaluator is a pcs.Evaluator returning canned results.
type fakeEvaluator struct {
	res *pcs.TCBResult
	err error
	got pcs.PlatformTCB
}

func (f *fakeEvaluator) Evaluate(_ context.Context, p pcs.PlatformTCB) (*pcs.TCBResult, error) {
	f.got = p
	return f.res, f.err
}

func TestTCBClaims(t *testing.T) {
	raw := readTestdata(t, "tdx_quote_6.dat")
	outOfDate := &pcs.TCBResult{Status: "OutOfDate", TCBDate: "2018-01-04T00:00:00Z", AdvisoryIDs: []string{"INTEL-SA-00001"}, CollateralExpired: true}
	upToDate := &pcs.TCBResult{Status: "UpToDate", TCBDate: "2024-03-13T00:00:00Z"}
	unavailable := errors.Join(pcs.ErrCollateralUnavailable, errors.New("no TCB info for FMSPC 00a06d080000"))
	tests := []struct {
		name    string
		eval    *fakeEvaluator
		offline bool
		want    error
		claims  map[string]any
	}{
		{"out of date", &fakeEvaluator{res: outOfDate}, false, nil, map[string]any{
			"tcb_status": "OutOfDate", "tcb_date": "2018-01-04T00:00:00Z", "advisory_ids": []any{"INTEL-SA-00001"}, "collateral_expiration_status": "1"}},
		{"up to date", &fakeEvaluator{res: upToDate}, false, nil, map[string]any{
			"tcb_status": "UpToDate", "advisory_ids": []any{}, "collateral_expiration_status": "0"}},
		{"unavailable offline", &fakeEvaluator{err: unavailable}, true, nil, map[string]any{"tcb_status": "Unknown"}},
		{"unavailable online", &fakeEvaluator{err: unavailable}, false, ErrTCB, nil},
		{"other error offline", &fakeEvaluator{err: errors.New("bad signature")}, true, ErrTCB, nil},
		{"revoked status", &fakeEvaluator{res: &pcs.TCBResult{Status: "Revoked"}}, true, ErrRevoked, nil},
		{"revoked certificate", &fakeEvaluator{err: fmt.Errorf("PCK CRL: %w", pcs.ErrRevoked)}, true, ErrRevoked, nil},
		{"FMSPC mismatch", &fakeEvaluator{err: fmt.Errorf("%w: tcbInfo for 50806F000000", pcs.ErrFMSPCMismatch)}, true, ErrTCB, nil},
		{"no level matched online", &fakeEvaluator{res: &pcs.TCBResult{Status: "Unknown", Reason: "no TCB level for 00a06d080000"}}, false, ErrTCB, nil},
		{"no level matched offline", &fakeEvaluator{res: &pcs.TCBResult{Status: "Unknown", Reason: "no TCB level for 00a06d080000"}}, true, nil, map[string]any{"tcb_status": "Unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, Options{Now: fixed(clock6), TCB: tt.eval, Offline: tt.offline})
			res, err := v.Verify(context.Background(), evidenceJSON(t, raw, nil), verifier.Expected{})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(tt.eval.got.PCKChain) != 3 || len(tt.eval.got.MRSignerSeam) != 48 || len(tt.eval.got.SeamAttributes) != 8 {
				t.Errorf("evaluator chain %d mrsignerseam %d", len(tt.eval.got.PCKChain), len(tt.eval.got.MRSignerSeam))
			}
			if hex.EncodeToString(tt.eval.got.FMSPC) != "00a06d080000" || tt.eval.got.PCESVN != 11 || tt.eval.got.QEISVSVN != 7 || tt.eval.got.TeeTCBSVN[0] != 5 || tt.eval.got.TeeTCBSVN[1] != 3 {
				t.Errorf("evaluator input %+v", tt.eval.got)
			}
			if err != nil {
				return
			}
			c := res[0].Claims
			for k, want := range tt.claims {
				if !reflect.DeepEqual(c[k], want) {
					t.Errorf("%s = %#v, want %#v", k, c[k], want)
				}
			}
			if c["tcb_status"] == "Unknown" && !strings.Contains(c["tcb_status_reason"].(string), "00a06d080000") {
				t.Errorf("reason %v", c["tcb_status_reason"])
			}
		})
	}
}

func TestNewRejectsNilRoot(t *testing.T) {
	if _, err := New(Options{TrustedRoots: []*x509.Certificate{nil}}); err == nil {
		t.Error("nil root accepted")
	}
}

func FuzzParseQuote(f *testing.F) {
	f.Add(readTestdata(f, "tdx_quote_4.dat"))
	f.Add(readTestdata(f, "tdx_quote_6.dat"))
	pki := newTestPKI(f, sgxExtDER(f, defaultSGXExt()))
	f.Add(buildQuote(f, pki, quoteOpts{version: 5, bodyType: BodyTypeTDX15}))
	f.Add(buildQuote(f, pki, quoteOpts{version: 5, bodyType: BodyTypeTDX10}))
	v := newVerifier(f, Options{Now: fixed(clock6)})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			return
		}
		if q.Size > len(b) || len(q.SignedData) > q.Size {
			t.Fatalf("size %d signed %d of %d", q.Size, len(q.SignedData), len(b))
		}
		_ = BuildClaims(q, nil, nil)
		_, _ = v.VerifyQuote(context.Background(), b)
	})
}

func FuzzParsePCKExtension(f *testing.F) {
	f.Add(sgxExtDER(f, defaultSGXExt()))
	for _, name := range []string{"tdx_quote_4.dat", "tdx_quote_6.dat"} {
		v := newVerifier(f, Options{Now: fixed(clock6)})
		vq, err := v.VerifyQuote(context.Background(), readTestdata(f, name))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range vq.Chain[0].Extensions {
			if e.Id.Equal(OIDSGXExtensions) {
				f.Add(e.Value)
			}
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		x, err := parseSGXExtension(der)
		if err == nil && (len(x.FMSPC) != 6 || len(x.PCEID) != 2 || len(x.PPID) != 16) {
			t.Fatalf("accepted extension with bad sizes: %+v", x)
		}
	})
}

func BenchmarkVerifyQuote(b *testing.B) {
	raw := readTestdata(b, "tdx_quote_6.dat")
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVerifier(b, Options{Now: fixed(clock6), ChainCacheSize: bc.cache})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyQuote(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ev := evidenceJSON(b, readTestdata(b, "tdx_quote_6.dat"), nil)
	v := newVerifier(b, Options{Now: fixed(clock6), TCB: &fakeEvaluator{res: &pcs.TCBResult{Status: "UpToDate"}}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, verifier.Expected{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	q4, q6 := readTestdata(t, "tdx_quote_4.dat"), readTestdata(t, "tdx_quote_6.dat")
	v := newVerifier(t, Options{Now: fixed(clock6), ChainCacheSize: 1})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			raw := q4
			if i%2 == 1 {
				raw = q6
			}
			_, err := v.VerifyQuote(context.Background(), raw)
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
