package pcs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	// collateralNow is inside both documents' windows
	// (tcbInfo 2025-10-27 … 2025-11-26, QE identity 2025-10-28 … 2025-11-27).
	collateralNow = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	// certNow is inside the TCB Signing certificate's validity
	// (2018-05-21 … 2025-05-21).
	certNow = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

func readTD(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quote6Platform holds the values the testdata README gives for
// tdx_quote_6.dat (PCK extension, TD report, QE report).
func quote6Platform(t testing.TB) PlatformTCB {
	p := PlatformTCB{
		FMSPC:       mustHex(t, "00a06d080000"),
		PCEID:       mustHex(t, "0000"),
		PCESVN:      11,
		CPUSVN:      [16]byte{2, 2, 7, 7, 4, 1, 0, 2},
		TeeTCBSVN:   [16]byte{5, 3, 2, 0},
		QEISVSVN:    7,
		QEISVPRODID: 2,
	}
	copy(p.QEMRSIGNER[:], mustHex(t, "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"))
	copy(p.QEAttributes[:], mustHex(t, "11000000000000000000000000000000"))
	return p
}

// quote4Platform: tdx_quote_4.dat's values (FMSPC 50806f000000, PCESVN 11,
// tee_tcb_svn 03000500…, QE ISVSVN 4).
func quote4Platform(t testing.TB) PlatformTCB {
	p := quote6Platform(t)
	p.FMSPC = mustHex(t, "50806f000000")
	p.TeeTCBSVN = [16]byte{3, 0, 5, 0}
	p.QEISVSVN = 4
	return p
}

// fakePCS serves the real captured collateral on the PCS v4 paths with the
// real issuer-chain header encoding, and counts requests per path.
type fakePCS struct {
	t        testing.TB
	srv      *httptest.Server
	tcbBody  []byte
	qeBody   []byte
	chainHdr string
	pckCRL   []byte
	rootCRL  []byte
	delay    time.Duration

	mu     sync.Mutex
	counts map[string]int
	fail   atomic.Bool
	// queries records the query strings seen per path.
	queries map[string][]string
}

func newFakePCS(t testing.TB) *fakePCS {
	f := &fakePCS{
		t:        t,
		tcbBody:  readTD(t, "tcbInfo.json"),
		qeBody:   readTD(t, "enclaveIdentity.json"),
		chainHdr: string(readTD(t, "tcb-info-issuer-chain.header")),
		pckCRL:   readTD(t, "pckcrl_platform.der"),
		rootCRL:  readTD(t, "rootcrl.der"),
		counts:   map[string]int{},
		queries:  map[string][]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePCS) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[path]
}

func (f *fakePCS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counts[r.URL.Path]++
	f.queries[r.URL.Path] = append(f.queries[r.URL.Path], r.URL.RawQuery)
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.fail.Load() {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/tdx/certification/v4/tcb":
		if r.URL.Query().Get("fmspc") == "" {
			http.Error(w, "fmspc missing", http.StatusBadRequest)
			return
		}
		w.Header().Set("TCB-Info-Issuer-Chain", f.chainHdr)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.tcbBody)
	case "/tdx/certification/v4/qe/identity":
		w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", f.chainHdr)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.qeBody)
	case "/sgx/certification/v4/pckcrl":
		if r.URL.Query().Get("ca") != "platform" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(f.pckCRL)
	case "/sgx/certification/v4/rootcacrl":
		// PCCS answers with hex-encoded DER.
		_, _ = w.Write([]byte(hex.EncodeToString(f.rootCRL)))
	default:
		http.NotFound(w, r)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func newClient(t testing.TB, base string, now func() time.Time, mod func(*Options)) *Client {
	t.Helper()
	o := Options{
		BaseURL: base,
		Now:     now,
		CertNow: func() time.Time { return certNow },
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestQuote6IsOutOfDate(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	res, err := c.Evaluate(context.Background(), quote6Platform(t))
	if err != nil {
		t.Fatal(err)
	}
	want := TCBResult{
		Status:                         StatusOutOfDate,
		TCBDate:                        "2018-01-04T00:00:00Z",
		PlatformStatus:                 StatusOutOfDate,
		PlatformTCBDate:                "2018-01-04T00:00:00Z",
		ModuleStatus:                   StatusUpToDate,
		ModuleTCBDate:                  "2024-03-13T00:00:00Z",
		ModuleIdentityID:               "TDX_03",
		QEStatus:                       StatusUpToDate,
		QETCBDate:                      "2024-03-13T00:00:00Z",
		TCBEvaluationDataNumber:        17,
		TCBInfoEvaluationDataNumber:    17,
		QEIdentityEvaluationDataNumber: 17,
		FMSPC:                          "00A06D080000",
		RootKeyID:                      "46e403bd34f05a3f2817ab9badcaacc7ffc98e0f261008cd30dae936cace18d5dcf58eef31463613de1570d516200993",
	}
	got := *res
	if got.Status != want.Status || got.TCBDate != want.TCBDate || got.PlatformStatus != want.PlatformStatus ||
		got.PlatformTCBDate != want.PlatformTCBDate || got.ModuleStatus != want.ModuleStatus ||
		got.ModuleTCBDate != want.ModuleTCBDate || got.ModuleIdentityID != want.ModuleIdentityID ||
		got.QEStatus != want.QEStatus || got.QETCBDate != want.QETCBDate ||
		got.TCBEvaluationDataNumber != want.TCBEvaluationDataNumber || got.FMSPC != want.FMSPC ||
		got.RootKeyID != want.RootKeyID || got.CollateralExpired || got.Stale || got.Reason != "" {
		t.Fatalf("result:\n got %+v\nwant %+v", got, want)
	}
	if len(got.AdvisoryIDs) != 0 {
		t.Errorf("advisories %v", got.AdvisoryIDs)
	}
	// Dates span the documents and the signing chain (2018-05-21 … 2025-05-21).
	if rfc3339(got.EarliestIssueDate) != "2018-05-21T10:45:10Z" ||
		rfc3339(got.LatestIssueDate) != "2025-10-28T06:45:09Z" ||
		rfc3339(got.EarliestExpirationDate) != "2025-05-21T10:50:10Z" {
		t.Errorf("dates %v %v %v", got.EarliestIssueDate, got.LatestIssueDate, got.EarliestExpirationDate)
	}
	cl := res.Claims()
	for k, v := range map[string]any{
		"tcb_status": "OutOfDate", "tcb_date": "2018-01-04T00:00:00Z", "collateral_expiration_status": "0",
		"tcb_eval_num": float64(17), "root_key_id": want.RootKeyID,
	} {
		if cl[k] != v {
			t.Errorf("claim %s = %v, want %v", k, cl[k], v)
		}
	}
	if adv, ok := cl["advisory_ids"].([]any); !ok || len(adv) != 0 {
		t.Errorf("advisory_ids = %#v", cl["advisory_ids"])
	}
	// The request followed the PCS API: upper-case FMSPC, update=early.
	f.mu.Lock()
	q := f.queries["/tdx/certification/v4/tcb"]
	f.mu.Unlock()
	if len(q) != 1 || q[0] != "fmspc=00A06D080000&update=early" {
		t.Errorf("tcb queries %v", q)
	}
}

func TestUpdateTypeStandard(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL+"/sgx/certification/v4/", fixed(collateralNow), func(o *Options) { o.TCBUpdateType = "standard" })
	if _, err := c.Evaluate(context.Background(), quote6Platform(t)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.queries["/tdx/certification/v4/qe/identity"]; len(q) != 1 || q[0] != "update=standard" {
		t.Errorf("qe queries %v", q)
	}
	if _, err := New(Options{TCBUpdateType: "later"}); err == nil {
		t.Error("bad update type accepted")
	}
}

func TestQuote4FMSPCMismatch(t *testing.T) {
	f := newFakePCS(t) // serves tcbInfo.json (FMSPC 00A06D080000) for any fmspc
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	_, err := c.Evaluate(context.Background(), quote4Platform(t))
	if !errors.Is(err, ErrFMSPCMismatch) {
		t.Fatalf("err = %v, want ErrFMSPCMismatch", err)
	}
}

func TestPCEIDMismatch(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	p := quote6Platform(t)
	p.PCEID = []byte{0, 1}
	if _, err := c.Evaluate(context.Background(), p); !errors.Is(err, ErrPCEIDMismatch) {
		t.Fatalf("err = %v", err)
	}
	p.FMSPC = p.FMSPC[:5]
	if _, err := c.Evaluate(context.Background(), p); !errors.Is(err, ErrInvalidPlatform) {
		t.Fatalf("err = %v", err)
	}
}

func TestTampering(t *testing.T) {
	tcb := readTD(t, "tcbInfo.json")
	qe := readTD(t, "enclaveIdentity.json")
	flip := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not found", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	sigFlip := func(b []byte) []byte {
		i := bytes.Index(b, []byte(`"signature":"`)) + len(`"signature":"`) + 10
		out := bytes.Clone(b)
		if out[i] == '0' {
			out[i] = '1'
		} else {
			out[i] = '0'
		}
		return out
	}
	hdr := string(readTD(t, "tcb-info-issuer-chain.header"))
	tests := []struct {
		name  string
		mod   func(f *fakePCS)
		want  error
		extra func(o *Options)
	}{
		{"tcbInfo body byte", func(f *fakePCS) {
			f.tcbBody = flip(tcb, `"tcbEvaluationDataNumber":17`, `"tcbEvaluationDataNumber":18`)
		}, ErrSignature, nil},
		{"tcbInfo level status", func(f *fakePCS) {
			f.tcbBody = flip(tcb, `"tcbDate":"2018-01-04T00:00:00Z","tcbStatus":"OutOfDate"`, `"tcbDate":"2018-01-04T00:00:00Z","tcbStatus":"UpToDate"`)
		}, ErrSignature, nil},
		{"tcbInfo signature", func(f *fakePCS) { f.tcbBody = sigFlip(tcb) }, ErrSignature, nil},
		{"enclaveIdentity body byte", func(f *fakePCS) { f.qeBody = flip(qe, `"isvsvn":4`, `"isvsvn":3`) }, ErrSignature, nil},
		{"enclaveIdentity signature", func(f *fakePCS) { f.qeBody = sigFlip(qe) }, ErrSignature, nil},
		{"signing certificate byte", func(f *fakePCS) {
			// Change one base64 character inside the signing certificate's
			// signature area.
			i := strings.Index(hdr, "-----END")
			b := []byte(hdr)
			j := i - 20
			if b[j] == 'A' {
				b[j] = 'B'
			} else {
				b[j] = 'A'
			}
			f.chainHdr = string(b)
		}, ErrSigningChain, nil},
		{"no issuer chain", func(f *fakePCS) { f.chainHdr = "" }, ErrSigningChain, nil},
		{"other root", func(f *fakePCS) {}, ErrSigningChain, func(o *Options) {
			blk, _ := pem.Decode(readTD(t, "pck_platform_ca_chain.pem"))
			ca, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			o.Roots = []*x509.Certificate{ca}
		}},
		{"signing cert expired at cert clock", func(f *fakePCS) {}, ErrSigningChain, func(o *Options) {
			// One clock for everything: the signing certificate ended
			// 2025-05-21, before this collateral was issued.
			o.CertNow = nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePCS(t)
			tc.mod(f)
			c := newClient(t, f.srv.URL, fixed(collateralNow), tc.extra)
			_, err := c.Evaluate(context.Background(), quote6Platform(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestGoogleSampleSignature(t *testing.T) {
	// go-tdx-guest's captured PCS responses (2023, FMSPC 50806f000000) are
	// signed by the same TCB Signing certificate.
	chain, err := parseChain(readTD(t, "tcb_signing_chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseTCBInfo(readTD(t, "sample_tcbInfo_response"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(chain[0], s.Raw, s.Signature); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s.TCBInfo.FMSPC) != "50806f000000" {
		t.Errorf("fmspc %x", s.TCBInfo.FMSPC)
	}
	q, err := ParseEnclaveIdentity(readTD(t, "sample_qeIdentity_response"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(chain[0], q.Raw, q.Signature); err != nil {
		t.Fatal(err)
	}
	// Re-indenting changes the bytes but not the content: accepted through
	// the compact-form fallback; a content change is not.
	var ind bytes.Buffer
	ind.Write([]byte("{\n  "))
	ind.Write(s.Raw[1:])
	if err := VerifySignature(chain[0], ind.Bytes(), s.Signature); err != nil {
		t.Errorf("whitespace variant: %v", err)
	}
	if err := VerifySignature(chain[0], s.Raw[:len(s.Raw)-2], s.Signature); !errors.Is(err, ErrSignature) {
		t.Errorf("truncated body: %v", err)
	}
}

func TestCollateralExpired(t *testing.T) {
	f := newFakePCS(t)
	for _, tc := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"after nextUpdate", time.Date(2025, 12, 15, 0, 0, 0, 0, time.UTC), "TCB Info expired at 2025-11-26T13:07:17Z"},
		{"before issueDate", time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), "TCB Info not valid before 2025-10-27T13:07:17Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, f.srv.URL, fixed(tc.now), nil)
			res, err := c.Evaluate(context.Background(), quote6Platform(t))
			if err != nil {
				t.Fatal(err)
			}
			if !res.CollateralExpired || !strings.Contains(res.Reason, tc.want) {
				t.Fatalf("expired=%v reason=%q", res.CollateralExpired, res.Reason)
			}
			if res.Status != StatusOutOfDate || res.Claims()["collateral_expiration_status"] != "1" {
				t.Errorf("status %s claims %v", res.Status, res.Claims())
			}
		})
	}
}

func TestCacheHitAndRefresh(t *testing.T) {
	f := newFakePCS(t)
	clk := &clock{t: collateralNow}
	c := newClient(t, f.srv.URL, clk.now, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := c.Evaluate(ctx, quote6Platform(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := f.count("/tdx/certification/v4/tcb"), f.count("/tdx/certification/v4/qe/identity"); n != 1 || m != 1 {
		t.Fatalf("requests tcb=%d qe=%d, want 1 each", n, m)
	}
	// Past the TCB Info's nextUpdate (2025-11-26T13:07:17Z) but before the
	// QE identity's: only the TCB Info is refetched.
	clk.set(time.Date(2025, 11, 26, 20, 0, 0, 0, time.UTC))
	res, err := c.Evaluate(ctx, quote6Platform(t))
	if err != nil {
		t.Fatal(err)
	}
	if n, m := f.count("/tdx/certification/v4/tcb"), f.count("/tdx/certification/v4/qe/identity"); n != 2 || m != 1 {
		t.Fatalf("requests tcb=%d qe=%d, want 2 and 1", n, m)
	}
	// The server had nothing newer: the result says the TCB Info expired.
	if !res.CollateralExpired || res.Stale {
		t.Errorf("expired=%v stale=%v", res.CollateralExpired, res.Stale)
	}
	// An expired document is not refetched on every call.
	if _, err := c.Evaluate(ctx, quote6Platform(t)); err != nil {
		t.Fatal(err)
	}
	if n := f.count("/tdx/certification/v4/tcb"); n != 2 {
		t.Errorf("tcb requests %d after expired refetch, want 2", n)
	}
	// Another update type is another cache key.
	c2 := newClient(t, f.srv.URL, clk.now, func(o *Options) { o.TCBUpdateType = "standard" })
	if _, err := c2.Evaluate(ctx, quote6Platform(t)); err != nil {
		t.Fatal(err)
	}
	if n := f.count("/tdx/certification/v4/tcb"); n != 3 {
		t.Errorf("tcb requests %d, want 3", n)
	}
	// MaxCacheAge forces an earlier refresh.
	clk.set(collateralNow)
	c3 := newClient(t, f.srv.URL, clk.now, func(o *Options) { o.MaxCacheAge = time.Hour })
	_, _ = c3.Evaluate(ctx, quote6Platform(t))
	clk.set(collateralNow.Add(2 * time.Hour))
	_, _ = c3.Evaluate(ctx, quote6Platform(t))
	if n := f.count("/tdx/certification/v4/tcb"); n != 5 {
		t.Errorf("tcb requests %d, want 5", n)
	}
}

func TestStaleIfError(t *testing.T) {
	f := newFakePCS(t)
	clk := &clock{t: collateralNow}
	c := newClient(t, f.srv.URL, clk.now, func(o *Options) { o.MaxCacheAge = time.Hour })
	ctx := context.Background()
	if _, err := c.Evaluate(ctx, quote6Platform(t)); err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	clk.set(collateralNow.Add(2 * time.Hour)) // refresh due (MaxCacheAge), PCS down
	res, err := c.Evaluate(ctx, quote6Platform(t))
	if err != nil {
		t.Fatalf("stale-if-error: %v", err)
	}
	if !res.Stale || !res.CollateralExpired || !strings.Contains(res.Reason, "failed refresh") ||
		!strings.Contains(res.Reason, "HTTP 503") || res.Status != StatusOutOfDate {
		t.Fatalf("stale=%v expired=%v status=%s reason=%q", res.Stale, res.CollateralExpired, res.Status, res.Reason)
	}
	before := f.count("/tdx/certification/v4/tcb")
	// Within RetryInterval the failed source is not asked again.
	clk.set(collateralNow.Add(2*time.Hour + 10*time.Second))
	if res, err = c.Evaluate(ctx, quote6Platform(t)); err != nil || !res.Stale {
		t.Fatalf("err=%v stale=%v", err, res != nil && res.Stale)
	}
	if n := f.count("/tdx/certification/v4/tcb"); n != before {
		t.Errorf("PCS asked again within retry interval: %d → %d", before, n)
	}
	// Recovery: fresh data, no stale marker.
	f.fail.Store(false)
	clk.set(collateralNow.Add(3 * time.Hour))
	if res, err = c.Evaluate(ctx, quote6Platform(t)); err != nil || res.Stale || res.CollateralExpired {
		t.Fatalf("after recovery err=%v res=%+v", err, res)
	}
}

func TestUnavailable(t *testing.T) {
	f := newFakePCS(t)
	url := f.srv.URL
	f.srv.Close() // connection refused
	c := newClient(t, url, fixed(collateralNow), nil)
	_, err := c.Evaluate(context.Background(), quote6Platform(t))
	if !errors.Is(err, ErrCollateralUnavailable) {
		t.Fatalf("err = %v", err)
	}
	// 404 (unknown FMSPC) is unavailability too.
	f2 := newFakePCS(t)
	f2.fail.Store(true)
	c = newClient(t, f2.srv.URL, fixed(collateralNow), nil)
	if _, err := c.Evaluate(context.Background(), quote6Platform(t)); !errors.Is(err, ErrCollateralUnavailable) {
		t.Fatalf("err = %v", err)
	}
	// Empty offline directory.
	c = newClient(t, "file://"+t.TempDir(), fixed(collateralNow), nil)
	if _, err := c.Evaluate(context.Background(), quote6Platform(t)); !errors.Is(err, ErrCollateralUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func writeOfflineDir(t *testing.T, dir string, lowerFMSPC bool) {
	t.Helper()
	name := "tcbinfo-00A06D080000.json"
	if lowerFMSPC {
		name = "tcbinfo-00a06d080000.json"
	}
	for n, b := range map[string][]byte{
		name:                    readTD(t, "tcbInfo.json"),
		"qe-identity.json":      readTD(t, "enclaveIdentity.json"),
		"tcb-signing-chain.pem": readTD(t, "tcb_signing_chain.pem"),
	} {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOfflineDirectory(t *testing.T) {
	for _, lower := range []bool{false, true} {
		dir := t.TempDir()
		writeOfflineDir(t, dir, lower)
		for _, c := range []*Client{
			newClient(t, "file://"+dir, fixed(collateralNow), nil),
			newClient(t, "", fixed(collateralNow), func(o *Options) { o.OfflineDir = dir }),
		} {
			res, err := c.Evaluate(context.Background(), quote6Platform(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != StatusOutOfDate || res.ModuleStatus != StatusUpToDate || res.QEStatus != StatusUpToDate {
				t.Fatalf("%+v", res)
			}
			if _, err := c.Evaluate(context.Background(), quote4Platform(t)); !errors.Is(err, ErrCollateralUnavailable) {
				t.Errorf("quote 4 FMSPC offline: %v", err)
			}
		}
	}
	// A per-document chain file takes precedence over the shared one.
	dir := t.TempDir()
	writeOfflineDir(t, dir, false)
	if err := os.WriteFile(filepath.Join(dir, "qe-identity.issuer-chain.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, "file://"+dir, fixed(collateralNow), nil)
	if _, err := c.Evaluate(context.Background(), quote6Platform(t)); !errors.Is(err, ErrSigningChain) {
		t.Errorf("bad per-document chain: %v", err)
	}
}

func TestOfflineFallbackWhenServiceDown(t *testing.T) {
	f := newFakePCS(t)
	f.fail.Store(true)
	dir := t.TempDir()
	writeOfflineDir(t, dir, false)
	c := newClient(t, f.srv.URL, fixed(collateralNow), func(o *Options) { o.OfflineDir = dir })
	res, err := c.Evaluate(context.Background(), quote6Platform(t))
	if err != nil || res.Status != StatusOutOfDate {
		t.Fatalf("err=%v res=%+v", err, res)
	}
	if f.count("/tdx/certification/v4/tcb") != 1 {
		t.Error("service not tried first")
	}
}

func TestPCSClientToolFile(t *testing.T) {
	tcb := readTD(t, "tcbInfo.json")
	qe := readTD(t, "enclaveIdentity.json")
	hdr := string(readTD(t, "tcb-info-issuer-chain.header"))
	doc := fmt.Sprintf(`{"collaterals":{"tcbinfos":[{"fmspc":"00a06d080000","tdx_tcbinfo":%s}],`+
		`"tdqeidentity":%s,"pckcacrl":{"processorCrl":"","platformCrl":"%s"},`+
		`"certificates":{"TCB-Info-Issuer-Chain":"%s","SGX-Enclave-Identity-Issuer-Chain":"%s"},"rootcacrl":"%s"}}`,
		tcb, qe, hex.EncodeToString(readTD(t, "pckcrl_platform.der")), hdr, hdr, hex.EncodeToString(readTD(t, "rootcrl.der")))
	path := filepath.Join(t.TempDir(), "collateral.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, "file://"+path, fixed(collateralNow), nil)
	p := quote6Platform(t)
	p.PCKChain = pckChain(t, big.NewInt(12345))
	res, err := c.Evaluate(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOutOfDate || !res.CRLChecked || res.PCKCRLNum != 1 || res.RootCACRLNum != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestCoalescing(t *testing.T) {
	f := newFakePCS(t)
	f.delay = 150 * time.Millisecond
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Evaluate(context.Background(), quote6Platform(t))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, m := f.count("/tdx/certification/v4/tcb"), f.count("/tdx/certification/v4/qe/identity"); n != 1 || m != 1 {
		t.Fatalf("requests tcb=%d qe=%d, want 1 each", n, m)
	}
}

func TestCallerCancellation(t *testing.T) {
	f := newFakePCS(t)
	f.delay = 200 * time.Millisecond
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Evaluate(ctx, quote6Platform(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The shared fetch finished anyway and filled the cache.
	time.Sleep(300 * time.Millisecond)
	if _, err := c.Evaluate(context.Background(), quote6Platform(t)); err != nil {
		t.Fatal(err)
	}
}

// pckChain returns a PCK chain whose CA is the real Intel SGX PCK Platform
// CA and whose leaf is a stand-in carrying only a serial number (the CRL
// check looks at serials; the caller verifies the real chain).
func pckChain(t testing.TB, serial *big.Int) []*x509.Certificate {
	t.Helper()
	chain, err := parseChain(readTD(t, "pck_platform_ca_chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    time.Date(2023, 2, 7, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2030, 2, 7, 0, 0, 0, 0, time.UTC),
	}
	leaf.Subject.CommonName = "Intel SGX PCK Certificate"
	return []*x509.Certificate{leaf, chain[0], chain[1]}
}

func TestCRLs(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	ctx := context.Background()

	p := quote6Platform(t)
	revoked, _ := new(big.Int).SetString("6FC34E5023E728923435D61AA4B83C618166AD35", 16)
	p.PCKChain = pckChain(t, revoked)
	if _, err := c.Evaluate(ctx, p); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked PCK: %v", err)
	}

	p.PCKChain = pckChain(t, big.NewInt(1))
	res, err := c.Evaluate(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	// The captured CRLs are from 2023: valid signatures, numbers 1, but
	// expired at the 2025 collateral clock.
	if !res.CRLChecked || res.PCKCRLNum != 1 || res.RootCACRLNum != 1 || !res.CollateralExpired ||
		!strings.Contains(res.Reason, "PCK CRL expired") || !strings.Contains(res.Reason, "Root CA CRL expired") {
		t.Fatalf("%+v", res)
	}
	if rfc3339(res.EarliestIssueDate) != "2018-05-21T10:45:10Z" || rfc3339(res.EarliestExpirationDate) != "2023-07-08T07:27:52Z" {
		t.Errorf("dates %v %v", res.EarliestIssueDate, res.EarliestExpirationDate)
	}
	if f.count("/sgx/certification/v4/pckcrl") != 1 || f.count("/sgx/certification/v4/rootcacrl") != 1 {
		t.Error("CRLs not fetched once each")
	}
	cl := res.Claims()
	if cl["pck_crl_num"] != float64(1) || cl["root_ca_crl_num"] != float64(1) || cl["collateral_expiration_status"] != "1" {
		t.Errorf("claims %v", cl)
	}

	// A CRL that is not signed by the PCK CA is rejected.
	f2 := newFakePCS(t)
	f2.pckCRL = f2.rootCRL
	c2 := newClient(t, f2.srv.URL, fixed(collateralNow), nil)
	if _, err := c2.Evaluate(ctx, p); !errors.Is(err, ErrSignature) {
		t.Fatalf("foreign CRL: %v", err)
	}
}

func TestQEIdentityMismatch(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	for name, mod := range map[string]func(*PlatformTCB){
		"mrsigner":   func(p *PlatformTCB) { p.QEMRSIGNER[0] ^= 1 },
		"isvprodid":  func(p *PlatformTCB) { p.QEISVPRODID = 1 },
		"attributes": func(p *PlatformTCB) { p.QEAttributes[0] = 0x13 }, // debug bit
		"miscselect": func(p *PlatformTCB) { p.QEMiscSelect[0] = 1 },
	} {
		p := quote6Platform(t)
		mod(&p)
		if _, err := c.Evaluate(context.Background(), p); !errors.Is(err, ErrQEIdentityMismatch) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Attribute bits outside the mask are ignored.
	p := quote6Platform(t)
	p.QEAttributes[0] |= 0x04
	p.QEAttributes[10] = 0xff
	if _, err := c.Evaluate(context.Background(), p); err != nil {
		t.Errorf("masked-out bits: %v", err)
	}
}

func TestSeamIdentity(t *testing.T) {
	f := newFakePCS(t)
	c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
	p := quote6Platform(t)
	p.MRSignerSeam = make([]byte, 48)
	p.SeamAttributes = make([]byte, 8)
	if _, err := c.Evaluate(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	p.MRSignerSeam[3] = 1
	if _, err := c.Evaluate(context.Background(), p); !errors.Is(err, ErrTDXModuleMismatch) {
		t.Fatalf("err = %v", err)
	}
	p.MRSignerSeam[3] = 0
	p.SeamAttributes[0] = 1
	if _, err := c.Evaluate(context.Background(), p); !errors.Is(err, ErrTDXModuleMismatch) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	for _, base := range []string{"ftp://x", "file://"} {
		if _, err := New(Options{BaseURL: base}); err == nil {
			t.Errorf("%q accepted", base)
		}
	}
	c, err := New(Options{})
	if err != nil || c.base.String() != DefaultBaseURL || !c.isPCS || c.update != "early" {
		t.Fatalf("defaults: %v %+v", err, c)
	}
	c, err = New(Options{BaseURL: "https://pccs.example:8081/sgx/certification/v4/"})
	if err != nil || c.base.String() != "https://pccs.example:8081" || c.isPCS {
		t.Fatalf("pccs: %v %v", err, c.base)
	}
}

func TestIssuerChainHeaderEncodings(t *testing.T) {
	pemChain := string(readTD(t, "tcb_signing_chain.pem"))
	for name, enc := range map[string]string{
		"intel (%20, %2B)":           string(readTD(t, "tcb-info-issuer-chain.header")),
		"form (QueryEscape)":         url.QueryEscape(pemChain),
		"path (PathEscape)":          url.PathEscape(pemChain),
		"unencoded '+' with %20/%0A": strings.NewReplacer(" ", "%20", "\n", "%0A").Replace(pemChain),
	} {
		t.Run(name, func(t *testing.T) {
			dec, err := decodeChainHeader(enc)
			if err != nil || dec != pemChain {
				t.Fatalf("err=%v equal=%v", err, dec == pemChain)
			}
			f := newFakePCS(t)
			f.chainHdr = enc
			c := newClient(t, f.srv.URL, fixed(collateralNow), nil)
			if _, err := c.Evaluate(context.Background(), quote6Platform(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
