package kds

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOfflineStoreCRL(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "crl"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"Milan.crl": "milan-crl", "genoa.crl": "genoa-crl"} {
		if err := os.WriteFile(filepath.Join(dir, "crl", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := NewOfflineStore(dir)
	tests := []struct {
		product, want string
		err           error
	}{
		{"Milan", "milan-crl", nil},
		{"Genoa", "genoa-crl", nil}, // lower-case file name
		{"Turin", "", ErrNotFound},
		{"../crl/Milan", "", ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.product, func(t *testing.T) {
			b, err := s.CRL(context.Background(), tc.product)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}

type crlSourceFunc func(ctx context.Context, product string) ([]byte, error)

func (f crlSourceFunc) CRL(ctx context.Context, product string) ([]byte, error) {
	return f(ctx, product)
}

func TestCRLSources(t *testing.T) {
	down := crlSourceFunc(func(context.Context, string) ([]byte, error) { return nil, errors.New("down") })
	empty := crlSourceFunc(func(context.Context, string) ([]byte, error) { return nil, nil })
	good := crlSourceFunc(func(_ context.Context, p string) ([]byte, error) { return []byte("crl-" + p), nil })
	tests := []struct {
		name    string
		sources CRLSources
		want    string
		err     error
	}{
		{"first wins", CRLSources{good, down}, "crl-Milan", nil},
		{"falls through failures", CRLSources{down, empty, good}, "crl-Milan", nil},
		{"all fail", CRLSources{down, empty}, "", ErrNotFound},
		{"none configured", nil, "", ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.sources.CRL(context.Background(), "Milan")
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}

// A failed CRL refresh serves the expired copy; a failure with nothing
// cached is remembered for CRLRetry instead of asking the KDS each time.
func TestClientCRLStaleAndRetry(t *testing.T) {
	k := newKDSServer(t, map[string][]byte{"/vcek/v1/Milan/crl": []byte("milan-crl")})
	now := now0
	c, err := New(Options{BaseURL: k.srv.URL, HTTPClient: k.srv.Client(), Now: func() time.Time { return now },
		CRLTTL: time.Minute, CRLRetry: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if b, err := c.CRL(ctx, "Milan"); err != nil || string(b) != "milan-crl" {
		t.Fatalf("CRL: %q, %v", b, err)
	}
	k.status.Store(http.StatusServiceUnavailable)
	now = now.Add(2 * time.Minute) // past CRLTTL
	hits := k.hits.Load()
	for range 2 {
		if b, err := c.CRL(ctx, "Milan"); err != nil || string(b) != "milan-crl" {
			t.Fatalf("stale CRL on refresh failure: %q, %v", b, err)
		}
	}
	if got := k.hits.Load() - hits; got != 1 {
		t.Fatalf("%d refresh attempts within CRLRetry, want 1", got)
	}

	hits = k.hits.Load()
	if _, err := c.CRL(ctx, "Genoa"); err == nil {
		t.Fatal("Genoa CRL from a failing KDS")
	}
	if _, err := c.CRL(ctx, "Genoa"); err == nil {
		t.Fatal("Genoa CRL from a failing KDS (remembered)")
	}
	if got := k.hits.Load() - hits; got != 1 {
		t.Fatalf("%d requests for a failing CRL within CRLRetry, want 1", got)
	}
	k.status.Store(0)
	now = now.Add(31 * time.Second)
	if _, err := c.CRL(ctx, "Genoa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after CRLRetry: %v, want the KDS asked again (404)", err)
	}
}
