package rim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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

// fakeRIMService serves the real RIM files verbatim following the NVIDIA RIM
// service contract: GET /v1/rim/{id} → JSON, 404 for unknown ids, 405 for
// other methods, 401 when a key is required and missing.
type fakeRIMService struct {
	rims     map[string][]byte
	key      string
	requests atomic.Int64
	mutate   func(*serviceResponse)
}

func (f *fakeRIMService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if f.key != "" && r.Header.Get("Authorization") != "Bearer "+f.key {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/rim/")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	doc, ok := f.rims[id]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"RIM not found"}`))
		return
	}
	sum := sha256.Sum256(doc)
	resp := serviceResponse{
		ID: id, RIM: base64.StdEncoding.EncodeToString(doc), SHA256: hex.EncodeToString(sum[:]),
		LastUpdated: "2026-03-13T00:02:33.009Z", RequestID: "6d3c4b1e-0000-4000-8000-000000000001", RIMFormat: "TCG",
	}
	if f.mutate != nil {
		f.mutate(&resp)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

const (
	vbiosID  = "NV_GPU_VBIOS_1010_0200_882_96005E0001"
	driverID = "NV_GPU_DRIVER_GH100_550.144.03"
)

func newFake(t *testing.T) (*fakeRIMService, *httptest.Server) {
	f := &fakeRIMService{rims: map[string][]byte{
		vbiosID:  readVector(t, "1010_0200_882_96005E0001_PROD.swidtag"),
		driverID: readVector(t, "NV_GPU_DRIVER_GH100_550.144.03.xml"),
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestClientFetchAndVerify(t *testing.T) {
	f, srv := newFake(t)
	f.key = "secret-key"
	now := day(2024, 6, 1)
	c, err := NewClient(ClientOptions{BaseURL: srv.URL + "/", ServiceKey: "secret-key", HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	id, err := VBIOSID("1010", "0200", "882", "96.00.5e.00.01")
	if err != nil || id != vbiosID {
		t.Fatalf("id %q %v", id, err)
	}
	doc, err := c.Fetch(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Source != SourceService || doc.RequestID == "" || doc.LastUpdated.IsZero() || string(doc.XML) != string(f.rims[vbiosID]) {
		t.Fatalf("unexpected document %+v", doc.Source)
	}
	if _, _, err := defaultVerifier(t).Verify(doc.XML, now); err != nil {
		t.Fatalf("served RIM does not verify: %v", err)
	}

	// Cache: a second fetch does not reach the service; after the TTL it does.
	if _, err := c.Fetch(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 {
		t.Fatalf("stats %+v", s)
	}
	now = now.Add(2 * time.Hour)
	if _, err := c.Fetch(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 2 {
		t.Fatalf("%d requests after TTL, want 2", got)
	}
}

func TestClientErrors(t *testing.T) {
	f, srv := newFake(t)
	newClient := func(key string) *Client {
		c, err := NewClient(ClientOptions{BaseURL: srv.URL, ServiceKey: key, HTTPClient: srv.Client(), CacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	if _, err := newClient("").Fetch(ctx, "NV_GPU_DRIVER_GH100_1.2.3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := newClient("").Fetch(ctx, "../etc/passwd"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("traversal: %v", err)
	}
	f.key = "k"
	if _, err := newClient("wrong").Fetch(ctx, vbiosID); !errors.Is(err, ErrService) {
		t.Errorf("unauthorized: %v", err)
	}
	f.key = ""
	for name, mut := range map[string]func(*serviceResponse){
		"id mismatch":     func(r *serviceResponse) { r.ID = driverID },
		"sha256 mismatch": func(r *serviceResponse) { r.SHA256 = strings.Repeat("0", 64) },
		"corim format":    func(r *serviceResponse) { r.RIMFormat = "CORIM" },
		"bad base64":      func(r *serviceResponse) { r.RIM = "!!!" },
	} {
		f.mutate = mut
		if _, err := newClient("").Fetch(ctx, vbiosID); !errors.Is(err, ErrService) {
			t.Errorf("%s: %v", name, err)
		}
	}
	f.mutate = nil
	// Unreachable service.
	c, err := NewClient(ClientOptions{BaseURL: "http://127.0.0.1:1", HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, vbiosID); !errors.Is(err, ErrService) {
		t.Errorf("unreachable: %v", err)
	}
	if _, err := NewClient(ClientOptions{BaseURL: "ftp://x"}); err == nil {
		t.Error("ftp base URL accepted")
	}
	if _, err := NewClient(ClientOptions{DisableService: true}); err == nil {
		t.Error("DisableService without OfflineDir accepted")
	}
}

func TestClientOfflineDir(t *testing.T) {
	dir := t.TempDir()
	vb := readVector(t, "1010_0200_882_96005E0001_PROD.swidtag")
	if err := os.WriteFile(filepath.Join(dir, vbiosID+".xml"), vb, 0o600); err != nil {
		t.Fatal(err)
	}
	// The driver RIM as a verbatim service JSON body.
	drv := readVector(t, "NV_GPU_DRIVER_GH100_550.144.03.xml")
	sum := sha256.Sum256(drv)
	body, _ := json.Marshal(serviceResponse{ID: driverID, RIM: base64.StdEncoding.EncodeToString(drv), SHA256: hex.EncodeToString(sum[:]), RIMFormat: "TCG"})
	if err := os.WriteFile(filepath.Join(dir, driverID+".json"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientOptions{OfflineDir: dir, DisableService: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d1, err := c.Fetch(ctx, vbiosID)
	if err != nil || d1.Source != SourceOffline || string(d1.XML) != string(vb) {
		t.Fatalf("xml: %v", err)
	}
	d2, err := c.Fetch(ctx, driverID)
	if err != nil || string(d2.XML) != string(drv) {
		t.Fatalf("json: %v", err)
	}
	if _, _, err := defaultVerifier(t).Verify(d2.XML, day(2025, 6, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, "NV_GPU_DRIVER_GH100_1.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}

	// Offline first, then the service for what the directory lacks.
	f, srv := newFake(t)
	f.rims["NV_GPU_DRIVER_GH100_1.0"] = drv
	c2, err := NewClient(ClientOptions{OfflineDir: dir, BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c2.Fetch(ctx, vbiosID); err != nil || d.Source != SourceOffline {
		t.Fatalf("offline first: %v", err)
	}
	if d, err := c2.Fetch(ctx, "NV_GPU_DRIVER_GH100_1.0"); err != nil || d.Source != SourceService {
		t.Fatalf("service fallback: %v", err)
	}
	if f.requests.Load() != 1 {
		t.Fatalf("%d service requests", f.requests.Load())
	}
}
