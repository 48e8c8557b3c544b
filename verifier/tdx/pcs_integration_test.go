package tdx

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/tdx/pcs"
)

// fakePCCS serves the real captured collateral on Intel's PCCS API paths
// (v4) with the real issuer-chain headers: TCB Info only for FMSPC
// 00A06D080000 (tcbInfo.json), the TD QE identity, the PCK Platform CA CRL
// and the Root CA CRL (hex, as a PCCS serves it).
// With anyFMSPC, tcbInfo.json is served whatever FMSPC is asked for.
func fakePCCS(t testing.TB, anyFMSPC bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	tcbInfo := readTestdata(t, "tcbInfo.json")
	qeID := readTestdata(t, "enclaveIdentity.json")
	// The TCB-Info-Issuer-Chain value as Intel PCS sends it (captured).
	chain := strings.TrimSpace(string(readTestdata(t, "tcb-info-issuer-chain.header")))
	pckCRL := readTestdata(t, "pckcrl_platform.der")
	rootCRL := readTestdata(t, "rootcrl.der")
	// The PCK CRL issuer chain: the Platform CA and root from the quote.
	q, err := ParseQuote(readTestdata(t, "tdx_quote_6.dat"))
	if err != nil {
		t.Fatal(err)
	}
	pemChain := string(q.PCKChainPEM)
	crlChain := pcsEscape(strings.TrimRight(pemChain[strings.Index(pemChain[10:], "-----BEGIN")+10:], "\x00"))

	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/tdx/certification/v4/tcb":
			fm := r.URL.Query().Get("fmspc")
			if !anyFMSPC && !strings.EqualFold(fm, "00A06D080000") {
				http.Error(w, "no TCB info", http.StatusNotFound)
				return
			}
			w.Header().Set("TCB-Info-Issuer-Chain", chain)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(tcbInfo)
		case "/tdx/certification/v4/qe/identity":
			w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", chain)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(qeID)
		case "/sgx/certification/v4/pckcrl":
			if r.URL.Query().Get("ca") != "platform" {
				http.Error(w, "unknown ca", http.StatusNotFound)
				return
			}
			w.Header().Set("SGX-PCK-CRL-Issuer-Chain", crlChain)
			_, _ = w.Write(pckCRL)
		case "/sgx/certification/v4/rootcacrl":
			_, _ = io.WriteString(w, hex.EncodeToString(rootCRL))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// pcsEscape percent-encodes like Intel PCS issuer-chain headers (space as
// %20, not +).
func pcsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// TestVerifyWithPCS runs quote 6 and quote 4 through the real collateral
// evaluator against a fake PCCS serving Trustee's tcbInfo.json and
// enclaveIdentity.json. README: quote 6 is OutOfDate overall (platform
// OutOfDate, TDX module TDX_03 and QE UpToDate); quote 4 has no collateral
// for its FMSPC, and tcbInfo.json applied to it is an FMSPC mismatch.
func TestVerifyWithPCS(t *testing.T) {
	srv, hits := fakePCCS(t, false)
	wrongSrv, _ := fakePCCS(t, true)
	collateralClock := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	signingCertClock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	newPCS := func(t *testing.T, srv *httptest.Server) *pcs.Client {
		c, err := pcs.New(pcs.Options{
			BaseURL:    srv.URL,
			HTTPClient: srv.Client(),
			Now:        fixed(collateralClock),
			CertNow:    fixed(signingCertClock),
			Logger:     discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()

	t.Run("quote 6 OutOfDate", func(t *testing.T) {
		v := newVerifier(t, Options{Now: fixed(clock6), TCB: newPCS(t, srv)})
		res, err := v.Verify(ctx, evidenceJSON(t, readTestdata(t, "tdx_quote_6.dat"), nil), verifier.Expected{})
		if err != nil {
			t.Fatal(err)
		}
		c := res[0].Claims
		if testing.Verbose() {
			delete(c, "quote")
			b, _ := json.MarshalIndent(c, "", " ")
			t.Logf("claims without quote: %s", b)
		}
		if c["tcb_status"] != "OutOfDate" {
			t.Errorf("tcb_status = %v, want OutOfDate (reason %v)", c["tcb_status"], c["tcb_status_reason"])
		}
		if c["tcb_date"] != "2018-01-04T00:00:00Z" {
			t.Errorf("tcb_date = %v", c["tcb_date"])
		}
		// The only CRLs available expired in 2023/2024.
		if s := c["collateral_expiration_status"]; s != "1" {
			t.Errorf("collateral_expiration_status = %v, want 1 (expired CRLs)", s)
		}
		if n := c["tcb_eval_num"]; n != float64(17) {
			t.Errorf("tcb_eval_num = %#v", n)
		}
		if _, ok := c["advisory_ids"].([]any); !ok {
			t.Errorf("advisory_ids = %#v", c["advisory_ids"])
		}
		if hits.Load() == 0 {
			t.Error("the fake PCCS was not asked")
		}
	})

	t.Run("quote 4 no collateral", func(t *testing.T) {
		ev := evidenceJSON(t, readTestdata(t, "tdx_quote_4.dat"), nil)
		v := newVerifier(t, Options{Now: fixed(clock4), TCB: newPCS(t, srv)})
		if _, err := v.Verify(ctx, ev, verifier.Expected{}); !errors.Is(err, ErrTCB) || !errors.Is(err, pcs.ErrCollateralUnavailable) {
			t.Fatalf("online: err = %v, want ErrTCB wrapping pcs.ErrCollateralUnavailable", err)
		}
		v = newVerifier(t, Options{Now: fixed(clock4), TCB: newPCS(t, srv), Offline: true})
		res, err := v.Verify(ctx, ev, verifier.Expected{})
		if err != nil {
			t.Fatalf("offline: %v", err)
		}
		if res[0].Claims["tcb_status"] != "Unknown" || res[0].Claims["tcb_status_reason"] == "" {
			t.Errorf("offline claims: %v / %v", res[0].Claims["tcb_status"], res[0].Claims["tcb_status_reason"])
		}
	})

	t.Run("quote 4 against tcbInfo.json", func(t *testing.T) {
		v := newVerifier(t, Options{Now: fixed(clock4), TCB: newPCS(t, wrongSrv), Offline: true})
		_, err := v.Verify(ctx, evidenceJSON(t, readTestdata(t, "tdx_quote_4.dat"), nil), verifier.Expected{})
		if !errors.Is(err, ErrTCB) || !errors.Is(err, pcs.ErrFMSPCMismatch) {
			t.Fatalf("err = %v, want ErrTCB wrapping pcs.ErrFMSPCMismatch", err)
		}
	})
}

// BenchmarkVerifyWithPCS is the full hot path: quote, chain (cached),
// collateral (cached by the pcs client, CRLs included) and claims.
func BenchmarkVerifyWithPCS(b *testing.B) {
	srv, _ := fakePCCS(b, false)
	c, err := pcs.New(pcs.Options{
		BaseURL:    srv.URL,
		HTTPClient: srv.Client(),
		Now:        fixed(time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)),
		CertNow:    fixed(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, Options{Now: fixed(clock6), TCB: c})
	ev := evidenceJSON(b, readTestdata(b, "tdx_quote_6.dat"), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, verifier.Expected{}); err != nil {
			b.Fatal(err)
		}
	}
}
