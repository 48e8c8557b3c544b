package pcs

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
)

func FuzzParseTCBInfo(f *testing.F) {
	f.Add(readTD(f, "tcbInfo.json"))
	f.Add(readTD(f, "sample_tcbInfo_response"))
	f.Add([]byte(`{"tcbInfo":{},"signature":""}`))
	info, _ := synthetic()
	if b, err := json.Marshal(info); err == nil {
		sig := make([]byte, 128)
		for i := range sig {
			sig[i] = '0'
		}
		f.Add(append(append([]byte(`{"tcbInfo":`), b...), []byte(`,"signature":"`+string(sig)+`"}`)...))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseTCBInfo(body)
		if err != nil {
			return
		}
		// A parsed document is safe to evaluate with any platform values.
		if len(s.Signature) != 64 || len(s.TCBInfo.FMSPC) != 6 {
			t.Fatalf("invariants broken: %d %d", len(s.Signature), len(s.TCBInfo.FMSPC))
		}
		_, qe := synthetic()
		p := PlatformTCB{FMSPC: s.TCBInfo.FMSPC, PCEID: s.TCBInfo.PCEID, PCESVN: 7, QEISVPRODID: 2}
		for i := range 16 {
			p.CPUSVN[i] = byte(body[i%len(body)])
			p.TeeTCBSVN[i] = byte(body[(i*7)%len(body)])
		}
		r, err := EvaluateCollateral(&s.TCBInfo, qe, p, s.TCBInfo.IssueDate)
		if err != nil {
			return
		}
		if _, ok := map[string]bool{StatusUpToDate: true, StatusUnknown: true}[r.Status]; !ok && !knownStatus[r.Status] {
			t.Fatalf("status %q", r.Status)
		}
	})
}

func FuzzParseEnclaveIdentity(f *testing.F) {
	f.Add(readTD(f, "enclaveIdentity.json"))
	f.Add(readTD(f, "sample_qeIdentity_response"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseEnclaveIdentity(body)
		if err != nil {
			return
		}
		p := PlatformTCB{QEISVSVN: 3}
		copy(p.QEMRSIGNER[:], s.Identity.MRSigner)
		p.QEISVPRODID = uint16(s.Identity.ISVProdID)
		_, _ = checkQEIdentity(&s.Identity, &p)
	})
}

func FuzzParseCRL(f *testing.F) {
	f.Add(readTD(f, "rootcrl.der"))
	f.Add(readTD(f, "pckcrl_platform.der"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseCRL(b)
	})
}

// BenchmarkEvaluateCached measures Evaluate with both documents cached; the
// fake PCS fails the benchmark if it is contacted after warm-up.
func BenchmarkEvaluateCached(b *testing.B) {
	f := newFakePCS(b)
	c := newClient(b, f.srv.URL, fixed(collateralNow), nil)
	ctx := context.Background()
	p := quote6Platform(b)
	if _, err := c.Evaluate(ctx, p); err != nil {
		b.Fatal(err)
	}
	warm := f.count("/tdx/certification/v4/tcb") + f.count("/tdx/certification/v4/qe/identity")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := c.Evaluate(ctx, p)
		if err != nil || r.Status != StatusOutOfDate {
			b.Fatal(err, r)
		}
	}
	b.StopTimer()
	if n := f.count("/tdx/certification/v4/tcb") + f.count("/tdx/certification/v4/qe/identity"); n != warm {
		b.Fatalf("network touched: %d requests after warm-up", n-warm)
	}
}

// BenchmarkEvaluateCachedWithCRLs adds the (memoised) CRL checks.
func BenchmarkEvaluateCachedWithCRLs(b *testing.B) {
	f := newFakePCS(b)
	c := newClient(b, f.srv.URL, fixed(collateralNow), nil)
	ctx := context.Background()
	p := quote6Platform(b)
	p.PCKChain = pckChain(b, bigOne())
	if _, err := c.Evaluate(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Evaluate(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchAndVerify measures a cold Evaluate (HTTP to a local fake
// PCS, parse, chain and two signature checks).
func BenchmarkFetchAndVerify(b *testing.B) {
	f := newFakePCS(b)
	ctx := context.Background()
	p := quote6Platform(b)
	b.ReportAllocs()
	for b.Loop() {
		c := newClient(b, f.srv.URL, fixed(collateralNow), nil)
		if _, err := c.Evaluate(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

func bigOne() *big.Int { return big.NewInt(1) }
