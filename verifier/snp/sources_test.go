package snp

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/snp/kds"
)

// e2eWithoutCerts is the Genoa evidence with "cert_chain": null, as a guest
// whose host provides no certificates sends it.
func e2eWithoutCerts(t testing.TB) (evidence []byte, vcek []byte, r *Report) {
	t.Helper()
	raw, vcek := e2eEvidence(t)
	r = mustParse(t, raw)
	return serdeJSON(t, r, nil), vcek, r
}

// fakeKDS serves the real Genoa VCEK at the exact KDS path and query.
func fakeKDS(t testing.TB, vcek []byte, chipID []byte, status *atomic.Int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	wantPath := "/vcek/v1/Genoa/" + hex.EncodeToString(chipID)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		if status != nil && status.Load() != 0 {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(int(status.Load()))
			return
		}
		if req.Method != http.MethodGet || req.URL.Path != wantPath ||
			req.URL.RawQuery != "blSPL=10&teeSPL=00&snpSPL=23&ucodeSPL=25" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		_, _ = w.Write(vcek)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestVCEKFromFakeKDS(t *testing.T) {
	ev, vcek, r := e2eWithoutCerts(t)
	srv, hits := fakeKDS(t, vcek, r.ChipID[:], nil)
	client, err := kds.New(kds.Options{BaseURL: srv.URL, HTTPClient: srv.Client(), Now: fixed(clock2025)})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Options{VCEKSources: []kds.Source{client}})
	for range 3 {
		if _, err := v.Verify(context.Background(), ev, verifier.Expected{ReportData: r.ReportData[:]}); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if got := client.Stats(); got.Fetches != 1 || got.Hits != 2 {
		t.Fatalf("stats %+v, want 1 fetch and 2 cache hits", got)
	}
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times", hits.Load())
	}
	// A tampered report asks for another TCB: the KDS has none.
	tampered := mustParse(t, r.Raw())
	tampered.ReportedTCB.SNP = 24
	raw := tampered.Raw()
	tampered.ReportedTCB.encode(raw[offReportedTCB:])
	if _, err := v.VerifyReport(context.Background(), raw, CertChain{}); !errors.Is(err, ErrVCEKSourcesNotFound) || !errors.Is(err, kds.ErrNotFound) {
		t.Fatalf("unknown TCB: %v", err)
	}
}

func TestVCEKKDSRateLimited(t *testing.T) {
	ev, vcek, r := e2eWithoutCerts(t)
	var status atomic.Int32
	status.Store(http.StatusTooManyRequests)
	srv, hits := fakeKDS(t, vcek, r.ChipID[:], &status)
	now := clock2025
	client, err := kds.New(kds.Options{BaseURL: srv.URL, HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Options{VCEKSources: []kds.Source{client}})
	var rl *kds.RateLimitError
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); !errors.Is(err, kds.ErrRateLimited) || !errors.As(err, &rl) {
		t.Fatalf("429: %v", err)
	}
	if !rl.Until.Equal(clock2025.Add(120 * time.Second)) {
		t.Fatalf("retry until %v", rl.Until)
	}
	status.Store(0)
	// Inside the Retry-After window the KDS is not asked again.
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); !errors.Is(err, kds.ErrRateLimited) {
		t.Fatalf("within Retry-After: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times during back-off", hits.Load())
	}
	now = now.Add(121 * time.Second)
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if st := client.Stats(); st.Limited != 2 || st.Fetches != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestVCEKFromOfflineStore(t *testing.T) {
	ev, vcek, r := e2eWithoutCerts(t)
	hwid := hex.EncodeToString(r.ChipID[:])
	write := func(dir, name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, "vcek", hwid, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	milanVCEK := readTestdata(t, "test-vcek.der")
	tests := []struct {
		name  string
		files map[string][]byte
		want  error
	}{
		{"tcb file", map[string][]byte{"bl10_tee00_snp23_ucode25_vcek.der": vcek}, nil},
		{"flat file", map[string][]byte{"vcek.der": vcek}, nil},
		{"tcb file preferred", map[string][]byte{"bl10_tee00_snp23_ucode25_vcek.der": vcek, "vcek.der": milanVCEK}, nil},
		{"wrong certificate", map[string][]byte{"vcek.der": milanVCEK}, ErrProductMismatch},
		{"other TCB only", map[string][]byte{"bl10_tee00_snp22_ucode25_vcek.der": vcek}, ErrVCEKSourcesNotFound},
		{"empty store", nil, ErrVCEKSourcesNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				write(dir, name, data)
			}
			v := newVerifier(t, Options{VCEKSources: []kds.Source{kds.NewOfflineStore(dir)}})
			_, err := v.Verify(context.Background(), ev, verifier.Expected{})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Sources are tried in order: an empty offline store, then the KDS.
	srv, _ := fakeKDS(t, vcek, r.ChipID[:], nil)
	client, err := kds.New(kds.Options{BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Options{VCEKSources: []kds.Source{kds.NewOfflineStore(t.TempDir()), client}})
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); err != nil {
		t.Fatalf("offline then KDS: %v", err)
	}
}

// A v2 report names no product, so no VCEK can be looked up for it.
func TestV2NeedsVCEKInEvidence(t *testing.T) {
	raw := readTestdata(t, "test-report.bin")
	v := newVerifier(t, Options{VCEKSources: []kds.Source{kds.NewOfflineStore(t.TempDir())}})
	if _, err := v.VerifyReport(context.Background(), raw, CertChain{}); !errors.Is(err, ErrNoVEK) {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	ev := readTestdata(b, "e2e-evidence-genoa.json")
	v := newVerifier(b, Options{})
	ctx := context.Background()
	parsed, err := ParseEvidence(ev)
	if err != nil {
		b.Fatal(err)
	}
	exp := verifier.Expected{ReportData: parsed.Report.ReportData[:]}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, exp); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU adds a cpu-ns/op metric (process CPU time, GC included), which
// stays meaningful when the wall-clock ns/op is inflated by other load.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := processCPU(); cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkVerifyReport(b *testing.B) {
	raw := readTestdata(b, "test-report.bin")
	certs := CertChain{VCEK: readTestdata(b, "test-vcek.der")}
	v := newVerifier(b, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := v.VerifyReport(ctx, raw, certs); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// BenchmarkVerifyReportColdVEK defeats the VEK cache (a new Verifier per
// iteration would also re-check the roots, so the cache is cleared
// instead): it measures the per-VEK RSA-PSS chain check plus parsing.
func BenchmarkVerifyReportColdVEK(b *testing.B) {
	raw := readTestdata(b, "test-report.bin")
	certs := CertChain{VCEK: readTestdata(b, "test-vcek.der")}
	v := newVerifier(b, Options{})
	ctx := context.Background()
	cpu0 := processCPU()
	for b.Loop() {
		v.mu.Lock()
		clear(v.veks)
		v.mu.Unlock()
		if _, err := v.VerifyReport(ctx, raw, certs); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

func BenchmarkParseEvidence(b *testing.B) {
	ev := readTestdata(b, "e2e-evidence-genoa.json")
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := ParseEvidence(ev); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}
