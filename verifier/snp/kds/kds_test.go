package kds

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var now0 = time.Date(2025, 6, 15, 12, 0, 0, 0, time.UTC)

func chip(first byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

func TestVCEKRequestPath(t *testing.T) {
	milanHW := hex.EncodeToString(chip(0x10))
	tests := []struct {
		name   string
		req    VCEKRequest
		want   string
		prefix string
		err    error
	}{
		{"milan", VCEKRequest{Product: "Milan", ChipID: chip(0x10), TCB: TCB{Bootloader: 3, SNP: 8, Microcode: 115}},
			"/vcek/v1/Milan/" + milanHW + "?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115", "bl03_tee00_snp08_ucode115", nil},
		{"turin", VCEKRequest{Product: "Turin", ChipID: chip(0xA0), TCB: TCB{HasFMC: true, FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 72}},
			"/vcek/v1/Turin/a0a1a2a3a4a5a6a7?fmcSPL=01&blSPL=02&teeSPL=03&snpSPL=04&ucodeSPL=72", "bl02_tee03_snp04_ucode72_fmc01", nil},
		{"turin without fmc", VCEKRequest{Product: "Turin", ChipID: chip(1)}, "", "", ErrBadRequest},
		{"zero chip id", VCEKRequest{Product: "Genoa", ChipID: make([]byte, 64)}, "", "", ErrBadRequest},
		{"short chip id", VCEKRequest{Product: "Genoa", ChipID: chip(1)[:8]}, "", "", ErrBadRequest},
		{"unknown product", VCEKRequest{Product: "../x", ChipID: chip(1)}, "", "", ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.req.Path()
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("path %q, want %q", got, tc.want)
			}
			if tc.err == nil && tc.req.TCBPrefix() != tc.prefix {
				t.Fatalf("prefix %q, want %q", tc.req.TCBPrefix(), tc.prefix)
			}
		})
	}
}

type kdsServer struct {
	srv    *httptest.Server
	hits   atomic.Int32
	status atomic.Int32
	retry  atomic.Value // string
}

func newKDSServer(t *testing.T, routes map[string][]byte) *kdsServer {
	t.Helper()
	k := &kdsServer{}
	k.retry.Store("")
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		if s := k.status.Load(); s != 0 {
			if ra := k.retry.Load().(string); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			w.WriteHeader(int(s))
			return
		}
		body, ok := routes[r.URL.RequestURI()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func TestClient(t *testing.T) {
	req := VCEKRequest{Product: "Genoa", ChipID: chip(7), TCB: TCB{Bootloader: 10, SNP: 23, Microcode: 25}}
	path, err := req.Path()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string][]byte{
		path:                        []byte("vcek-der"),
		"/vcek/v1/Genoa/cert_chain": []byte("ask-ark-pem"),
		"/vlek/v1/Milan/cert_chain": []byte("asvk-ark-pem"),
		"/vcek/v1/Turin/crl":        []byte("crl-der"),
	}
	k := newKDSServer(t, routes)
	now := now0
	c, err := New(Options{BaseURL: k.srv.URL + "/", HTTPClient: k.srv.Client(), Now: func() time.Time { return now }, CRLTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if b, err := c.VCEK(ctx, req); err != nil || string(b) != "vcek-der" {
			t.Fatalf("VCEK: %q, %v", b, err)
		}
	}
	if b, err := c.CertChain(ctx, "Genoa", "vcek"); err != nil || string(b) != "ask-ark-pem" {
		t.Fatalf("CertChain: %q, %v", b, err)
	}
	if b, err := c.CertChain(ctx, "Milan", "vlek"); err != nil || string(b) != "asvk-ark-pem" {
		t.Fatalf("CertChain vlek: %q, %v", b, err)
	}
	if _, err := c.CertChain(ctx, "Milan", "ark"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad kind: %v", err)
	}
	if b, err := c.CRL(ctx, "Turin"); err != nil || string(b) != "crl-der" {
		t.Fatalf("CRL: %q, %v", b, err)
	}
	if _, err := c.CRL(ctx, "Turin"); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Fetches != 4 || st.Hits != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The CRL expires from the cache after CRLTTL; VCEKs do not.
	now = now.Add(2 * time.Minute)
	if _, err := c.CRL(ctx, "Turin"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VCEK(ctx, req); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Fetches != 5 || st.Hits != 3 {
		t.Fatalf("stats after TTL %+v", st)
	}
	// 404.
	other := req
	other.TCB.SNP = 22
	if _, err := c.VCEK(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
	// Server errors are not cached and not rate limits.
	k.status.Store(http.StatusInternalServerError)
	if _, err := c.CRL(ctx, "Milan"); err == nil || errors.Is(err, ErrRateLimited) || errors.Is(err, ErrNotFound) {
		t.Fatalf("500: %v", err)
	}
	// Context cancellation reaches the request.
	k.status.Store(0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.CRL(cctx, "Genoa"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name  string
		retry string
		want  time.Duration
	}{
		{"seconds", "30", 30 * time.Second},
		{"http date", now0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"missing", "", time.Minute},
		{"garbage", "soon", time.Minute},
	}
	req := VCEKRequest{Product: "Milan", ChipID: chip(1), TCB: TCB{Bootloader: 1}}
	path, _ := req.Path()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newKDSServer(t, map[string][]byte{path: []byte("ok")})
			k.status.Store(http.StatusTooManyRequests)
			k.retry.Store(tc.retry)
			now := now0
			c, err := New(Options{BaseURL: k.srv.URL, HTTPClient: k.srv.Client(), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.VCEK(context.Background(), req)
			var rl *RateLimitError
			if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) {
				t.Fatalf("got %v", err)
			}
			if !rl.Until.Equal(now0.Add(tc.want)) {
				t.Fatalf("until %v, want %v", rl.Until, now0.Add(tc.want))
			}
			k.status.Store(0)
			now = now0.Add(tc.want - time.Second)
			if _, err := c.VCEK(context.Background(), req); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("inside window: %v", err)
			}
			if k.hits.Load() != 1 {
				t.Fatalf("%d requests during back-off", k.hits.Load())
			}
			now = now0.Add(tc.want)
			if b, err := c.VCEK(context.Background(), req); err != nil || string(b) != "ok" {
				t.Fatalf("after window: %q %v", b, err)
			}
		})
	}
}

func TestClientLimits(t *testing.T) {
	req := VCEKRequest{Product: "Milan", ChipID: chip(1), TCB: TCB{}}
	path, _ := req.Path()
	big := bytes.Repeat([]byte{1}, 64<<10+1)
	k := newKDSServer(t, map[string][]byte{path: big, "/vcek/v1/Genoa/crl": {}})
	c, err := New(Options{BaseURL: k.srv.URL, HTTPClient: k.srv.Client(), MaxCacheEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VCEK(context.Background(), req); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := c.CRL(context.Background(), "Genoa"); err == nil {
		t.Fatal("empty body accepted")
	}
	for _, base := range []string{"ftp://x", "not a url", "http://"} {
		if _, err := New(Options{BaseURL: base}); err == nil {
			t.Errorf("base %q accepted", base)
		}
	}
	if c, err := New(Options{}); err != nil || c.base != DefaultBaseURL {
		t.Fatalf("default base: %v", err)
	}
}

func TestCacheBound(t *testing.T) {
	routes := map[string][]byte{}
	var reqs []VCEKRequest
	for i := range 3 {
		r := VCEKRequest{Product: "Genoa", ChipID: chip(byte(i + 1))}
		p, _ := r.Path()
		routes[p] = []byte{byte(i)}
		reqs = append(reqs, r)
	}
	k := newKDSServer(t, routes)
	c, err := New(Options{BaseURL: k.srv.URL, HTTPClient: k.srv.Client(), MaxCacheEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if _, err := c.VCEK(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	n := len(c.cache)
	c.mu.Unlock()
	if n > 2 {
		t.Fatalf("cache holds %d entries, bound 2", n)
	}
}

func TestOfflineStore(t *testing.T) {
	dir := t.TempDir()
	put := func(hwid, name, data string) {
		p := filepath.Join(dir, "vcek", hwid, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	genoa := VCEKRequest{Product: "Genoa", ChipID: chip(0x30), TCB: TCB{Bootloader: 10, SNP: 23, Microcode: 25}}
	genoaHW, _ := genoa.HWID()
	put(genoaHW, "bl10_tee00_snp23_ucode25_vcek.der", "tcb")
	put(genoaHW, "vcek.der", "flat")
	turin := VCEKRequest{Product: "Turin", ChipID: chip(0xA0), TCB: TCB{HasFMC: true, FMC: 1, Bootloader: 2, TEE: 3, SNP: 4, Microcode: 72}}
	turinFull := hex.EncodeToString(turin.ChipID)
	put(turinFull, "bl02_tee03_snp04_ucode72_fmc01_vcek.der", "turin-full")

	s := NewOfflineStore(dir)
	ctx := context.Background()
	tests := []struct {
		name string
		req  VCEKRequest
		want string
		err  error
	}{
		{"tcb-named file", genoa, "tcb", nil},
		{"flat fallback", func() VCEKRequest { r := genoa; r.TCB.SNP = 24; return r }(), "flat", nil},
		{"turin, 64-byte hwid directory", turin, "turin-full", nil},
		{"unknown chip", VCEKRequest{Product: "Genoa", ChipID: chip(0x31)}, "", ErrNotFound},
		{"bad request", VCEKRequest{Product: "Genoa", ChipID: make([]byte, 64)}, "", ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.VCEK(ctx, tc.req)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.VCEK(cctx, genoa); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}
