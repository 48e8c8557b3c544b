package kbs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
)

type noAS struct{}

func (noAS) Evaluate(context.Context, *attestation.Request) (*attestation.Result, error) {
	return nil, errors.New("not used")
}
func (noAS) SetPolicy(context.Context, string, string) error { return errors.New("not used") }

type noRVPS struct{}

func (noRVPS) Register(context.Context, []byte) error                 { return errors.New("not used") }
func (noRVPS) Query(context.Context, string) (json.RawMessage, error) { return nil, nil }

type denyAdmin struct{}

func (denyAdmin) Authorize(context.Context, *http.Request) error { return errors.New("denied") }

type noTokens struct{}

func (noTokens) Verify(context.Context, string) (map[string]any, error) {
	return nil, errors.New("not used")
}

func newBareServer(tb testing.TB) *Server {
	tb.Helper()
	ctx := context.Background()
	be := memory.New()
	sess, _ := be.Namespace(ctx, storage.NamespaceSession)
	pol, _ := be.Namespace(ctx, storage.NamespaceKBS)
	s, err := New(ctx, Config{AS: noAS{}, RVPS: noRVPS{}, Admin: denyAdmin{}, Tokens: noTokens{}, Sessions: sess, Policies: pol})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSessionHeap reports the heap held per live RCAR session (the
// in-memory session store) as B/session.
func BenchmarkSessionHeap(b *testing.B) {
	s := newBareServer(b)
	h := s.Handler()
	body := []byte(`{"version":"0.4.0","tee":"sample","extra-params":""}`)
	const n = 20000
	before := heapInUse()
	for range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/kbs/v0/auth", bytes.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("auth: %d", rec.Code)
		}
	}
	after := heapInUse()
	per := float64(after-before) / n
	for range b.N {
	}
	b.ReportMetric(per, "B/session")
	runtime.KeepAlive(s)
}

// TestSessionHeapBound keeps the per-session heap under the 4 KiB budget.
func TestSessionHeapBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 20k sessions")
	}
	r := testing.Benchmark(BenchmarkSessionHeap)
	if per := r.Extra["B/session"]; per <= 0 || per > 4096 {
		t.Fatalf("heap per live session %.0f B, budget 4096 B", per)
	}
}

func TestSweepRemovesExpired(t *testing.T) {
	s := newBareServer(t)
	h := s.Handler()
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/kbs/v0/auth", bytes.NewReader([]byte(`{"version":"0.4.0","tee":"sample","extra-params":""}`))))
	}
	if n, err := s.SweepSessions(context.Background()); err != nil || n != 0 {
		t.Fatalf("fresh sessions swept: %d %v", n, err)
	}
	s.sessions.timeout = 0
	s.sessions.now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	if n, err := s.SweepSessions(context.Background()); err != nil || n != 3 {
		t.Fatalf("expired sessions swept: %d %v", n, err)
	}
}
