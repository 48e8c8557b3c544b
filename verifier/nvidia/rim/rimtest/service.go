package rimtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// ServiceResponse returns the NVIDIA RIM service JSON body for a RIM
// document: {"id","rim":<base64>,"sha256","last_updated","request_id","rim_format":"TCG"}.
// It is also the "<id>.json" layout of rim.ClientOptions.OfflineDir.
func ServiceResponse(id string, doc []byte) []byte {
	sum := sha256.Sum256(doc)
	body, err := json.Marshal(map[string]string{
		"id":           id,
		"rim":          base64.StdEncoding.EncodeToString(doc),
		"sha256":       hex.EncodeToString(sum[:]),
		"last_updated": "2026-01-01T00:00:00.000Z",
		"request_id":   "00000000-0000-4000-8000-000000000000",
		"rim_format":   "TCG",
	})
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return body
}

// Service is a fake NVIDIA RIM service following the real API contract:
// GET /v1/rim/{id} → 200 JSON (ServiceResponse), 404 for unknown ids, 405
// for other methods, 401 when Key is set and the request lacks
// "Authorization: Bearer <Key>". Serve it with httptest.NewServer.
type Service struct {
	// Key, when set, is the required bearer service key.
	Key string

	mu       sync.Mutex
	rims     map[string][]byte
	requests atomic.Int64
}

// NewService returns a service holding the given RIMs (id → XML).
func NewService(rims map[string][]byte) *Service {
	s := &Service{rims: map[string][]byte{}}
	for id, doc := range rims {
		s.rims[id] = doc
	}
	return s
}

// Put adds or replaces a RIM.
func (s *Service) Put(id string, doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rims[id] = doc
}

// Requests returns the number of requests served.
func (s *Service) Requests() int64 { return s.requests.Load() }

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if s.Key != "" && r.Header.Get("Authorization") != "Bearer "+s.Key {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/rim/")
	s.mu.Lock()
	doc, found := s.rims[id]
	s.mu.Unlock()
	if !ok || !found {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"RIM not found"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ServiceResponse(id, doc))
}
