package rvps

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/storage"
)

// mapStore is a minimal in-test storage.Store.
type mapStore struct {
	mu     sync.Mutex
	m      map[string][]byte
	setErr error
}

func newMapStore() *mapStore { return &mapStore{m: map[string][]byte{}} }

func (s *mapStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *mapStore) Set(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.setErr != nil {
		return s.setErr
	}
	s.m[key] = bytes.Clone(value)
	return nil
}

func (s *mapStore) Create(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	_, ok := s.m[key]
	s.mu.Unlock()
	if ok {
		return storage.ErrExists
	}
	return s.Set(ctx, key, value)
}

func (s *mapStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		return storage.ErrNotFound
	}
	delete(s.m, key)
	return nil
}

func (s *mapStore) List(_ context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys, nil
}

var _ storage.Store = (*mapStore)(nil)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func sampleMessage(t *testing.T, version string, values map[string]any) []byte {
	t.Helper()
	payload, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	msg := map[string]string{"type": "sample", "payload": base64.StdEncoding.EncodeToString(payload)}
	if version != "" {
		msg["version"] = version
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newService() (*Service, *mapStore, *clock) {
	st := newMapStore()
	c := &clock{t: t0}
	return New(st, Options{Now: c.now}), st, c
}

func TestRegisterQuery(t *testing.T) {
	tests := []struct {
		name    string
		version string
		values  map[string]any
		want    map[string]string // id -> compact JSON
	}{
		{
			name:    "string list",
			version: "0.1.0",
			values:  map[string]any{"svn": []string{"1"}},
			want:    map[string]string{"svn": `["1"]`},
		},
		{
			name:   "version defaults",
			values: map[string]any{"platform_major": 1},
			want:   map[string]string{"platform_major": `1`},
		},
		{
			name: "several values of any JSON type",
			values: map[string]any{
				"approved_images": []string{"bitnami/nginx:latest"},
				"launch_digest":   "abcde",
				"debug":           false,
				"nested":          map[string]any{"a": []int{1, 2}},
				"nothing":         nil,
				"rvps:///github.com/confidential-containers/x:tag": "v",
			},
			want: map[string]string{
				"approved_images": `["bitnami/nginx:latest"]`,
				"launch_digest":   `"abcde"`,
				"debug":           `false`,
				"nested":          `{"a":[1,2]}`,
				"nothing":         `null`,
				"rvps:///github.com/confidential-containers/x:tag": `"v"`,
			},
		},
		{
			name:   "empty payload object registers nothing",
			values: map[string]any{},
			want:   map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newService()
			ctx := context.Background()
			if err := s.Register(ctx, sampleMessage(t, tt.version, tt.values)); err != nil {
				t.Fatalf("Register: %v", err)
			}
			if len(st.m) != len(tt.want) {
				t.Errorf("store has %d keys, want %d", len(st.m), len(tt.want))
			}
			for id, want := range tt.want {
				got, err := s.Query(ctx, id)
				if err != nil {
					t.Fatalf("Query(%q): %v", id, err)
				}
				if string(got) != want {
					t.Errorf("Query(%q) = %s, want %s", id, got, want)
				}
			}
			got, err := s.Query(ctx, "absent")
			if got != nil || err != nil {
				t.Errorf("Query(absent) = %s, %v; want nil, nil", got, err)
			}
		})
	}
}

func TestStoredFormat(t *testing.T) {
	s, st, _ := newService()
	payload := base64.StdEncoding.EncodeToString([]byte(`{"x": [ "<a&b>" ,1 ] }`))
	if err := s.Register(context.Background(), []byte(`{"type":"sample","payload":"`+payload+`"}`)); err != nil {
		t.Fatal(err)
	}
	// Seconds precision, UTC, 12 months later; value compacted, not HTML-escaped.
	want := `{"version":"0.1.0","name":"x","expiration":"2027-03-14T09:26:53Z","value":["<a&b>",1]}`
	if got := string(st.m["x"]); got != want {
		t.Errorf("stored %s\nwant   %s", got, want)
	}
}

func TestExpirationMonthClamp(t *testing.T) {
	tests := []struct {
		now  time.Time
		want string
	}{
		{time.Date(2028, 2, 29, 23, 59, 59, 999_999_999, time.UTC), "2029-02-28T23:59:59Z"},
		{time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), "2027-12-31T00:00:00Z"},
		{time.Date(2026, 6, 1, 3, 0, 0, 0, time.FixedZone("X", 5*3600)), "2027-05-31T22:00:00Z"},
	}
	for _, tt := range tests {
		st := newMapStore()
		s := New(st, Options{Now: func() time.Time { return tt.now }})
		if err := s.Register(context.Background(), sampleMessage(t, "", map[string]any{"k": 1})); err != nil {
			t.Fatal(err)
		}
		var sv storedValue
		if err := json.Unmarshal(st.m["k"], &sv); err != nil {
			t.Fatal(err)
		}
		if sv.Expiration != tt.want {
			t.Errorf("now %v: expiration %s, want %s", tt.now, sv.Expiration, tt.want)
		}
	}
}

func TestOverwrite(t *testing.T) {
	s, _, c := newService()
	ctx := context.Background()
	if err := s.Register(ctx, sampleMessage(t, "", map[string]any{"svn": []string{"1"}})); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(11 * 30 * 24 * time.Hour)
	if err := s.Register(ctx, sampleMessage(t, "", map[string]any{"svn": []string{"2", "3"}})); err != nil {
		t.Fatal(err)
	}
	got, err := s.Query(ctx, "svn")
	if err != nil || string(got) != `["2","3"]` {
		t.Fatalf("Query = %s, %v; want [\"2\",\"3\"]", got, err)
	}
	// The re-registration renewed the expiration: still valid 13 months
	// after the first registration.
	c.t = t0.AddDate(0, 13, 0)
	if got, err := s.Query(ctx, "svn"); err != nil || got == nil {
		t.Fatalf("after renewal Query = %s, %v; want a value", got, err)
	}
}

func TestExpirationEnforced(t *testing.T) {
	s, _, c := newService()
	ctx := context.Background()
	if err := s.Register(ctx, sampleMessage(t, "", map[string]any{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2027, 3, 14, 9, 26, 53, 0, time.UTC)
	tests := []struct {
		now   time.Time
		found bool
	}{
		{t0, true},
		{exp.Add(-time.Nanosecond), true},
		{exp, false},
		{exp.Add(time.Hour), false},
	}
	for _, tt := range tests {
		c.t = tt.now
		got, err := s.Query(ctx, "k")
		if err != nil {
			t.Fatalf("now %v: %v", tt.now, err)
		}
		if (got != nil) != tt.found {
			t.Errorf("now %v: Query = %s, want found=%v", tt.now, got, tt.found)
		}
	}
}

func TestQueryTrusteeWrittenValue(t *testing.T) {
	s, st, _ := newService()
	st.m["ref"] = []byte(`{"version":"0.1.0","name":"ref","expiration":"2027-01-01T00:00:00Z","value":["a", "b"]}`)
	got, err := s.Query(context.Background(), "ref")
	if err != nil {
		t.Fatal(err)
	}
	var v []string
	if err := json.Unmarshal(got, &v); err != nil || len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("Query = %s (%v)", got, err)
	}
}

func TestQueryCorruptStoredValue(t *testing.T) {
	tests := map[string]string{
		"not JSON":           `{`,
		"null":               `null`,
		"no expiration":      `{"value":1}`,
		"expiration number":  `{"expiration":1,"value":1}`,
		"expiration garbage": `{"expiration":"tomorrow","value":1}`,
		"no value":           `{"expiration":"2099-01-01T00:00:00Z"}`,
	}
	for name, stored := range tests {
		t.Run(name, func(t *testing.T) {
			s, st, _ := newService()
			st.m["k"] = []byte(stored)
			got, err := s.Query(context.Background(), "k")
			if err == nil {
				t.Errorf("Query = %s, want an error", got)
			}
		})
	}
}

func TestRegisterErrorTexts(t *testing.T) {
	payload := base64.StdEncoding.EncodeToString([]byte(`{"a":1}`))
	tests := []struct {
		name string
		msg  string
		want string // exact error text
	}{
		{"version", `{"version":"0.2.0","type":"sample","payload":"` + payload + `"}`, "Version unmatched! Need 0.1.0, given 0.2.0."},
		{"empty version", `{"version":"","type":"sample","payload":"` + payload + `"}`, "Version unmatched! Need 0.1.0, given ."},
		{"unknown type", `{"type":"in-toto","payload":"` + payload + `"}`, "Could not find extractor for in-toto"},
		{"corim", `{"type":"corim","payload":"` + payload + `"}`, "Could not find extractor for corim"},
		{"type is case sensitive", `{"type":"Sample","payload":"` + payload + `"}`, "Could not find extractor for Sample"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newService()
			err := s.Register(context.Background(), []byte(tt.msg))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Register error = %v, want %q", err, tt.want)
			}
			if len(st.m) != 0 {
				t.Errorf("store written on error: %v", st.m)
			}
		})
	}
}

func TestSamplePayloadEncodings(t *testing.T) {
	// 0xfb 0xff in the JSON string makes the encodings differ in alphabet.
	doc := []byte(`{"k":"\u00fb\u00ff?>"}`)
	for name, payload := range map[string]string{
		"std padded":   base64.StdEncoding.EncodeToString(doc),
		"std unpadded": base64.RawStdEncoding.EncodeToString(doc),
		"url padded":   base64.URLEncoding.EncodeToString(doc),
		"url unpadded": base64.RawURLEncoding.EncodeToString(doc),
	} {
		t.Run(name, func(t *testing.T) {
			s, _, _ := newService()
			msg, _ := json.Marshal(map[string]string{"type": "sample", "payload": payload})
			if err := s.Register(context.Background(), msg); err != nil {
				t.Fatalf("Register(%s): %v", payload, err)
			}
			got, err := s.Query(context.Background(), "k")
			if err != nil || string(got) != `"\u00fb\u00ff?>"` {
				t.Errorf("Query = %s, %v", got, err)
			}
		})
	}
}

func TestRegisterMalformed(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	long := strings.Repeat("n", MaxNameLen+1)
	tests := []struct {
		name    string
		msg     string
		wantErr string // substring
	}{
		{"empty input", ``, "parse register message"},
		{"not JSON", `{"type":`, "parse register message"},
		{"JSON null", `null`, "not a JSON object"},
		{"JSON array", `[]`, "parse register message"},
		{"JSON string", `"sample"`, "parse register message"},
		{"missing type", `{"payload":"e30="}`, `missing field "type"`},
		{"missing payload", `{"type":"sample"}`, `missing field "payload"`},
		{"type null", `{"type":null,"payload":"e30="}`, "type: not a JSON string"},
		{"type number", `{"type":1,"payload":"e30="}`, "type: not a JSON string"},
		{"payload object", `{"type":"sample","payload":{}}`, "payload: not a JSON string"},
		{"version number", `{"version":1,"type":"sample","payload":"e30="}`, "version: not a JSON string"},
		{"field names are case sensitive", `{"Type":"sample","payload":"e30="}`, `missing field "type"`},
		{"bad base64", `{"type":"sample","payload":"!!!!"}`, "decode payload"},
		{"mixed alphabets", `{"type":"sample","payload":"ab+_"}`, "decode payload"},
		{"bad padding", `{"type":"sample","payload":"e30=="}`, "decode payload"},
		{"payload not JSON", `{"type":"sample","payload":"` + b64("hello") + `"}`, "not a JSON object"},
		{"payload JSON null", `{"type":"sample","payload":"` + b64("null") + `"}`, "not a JSON object"},
		{"payload JSON array", `{"type":"sample","payload":"` + b64(`[1]`) + `"}`, "not a JSON object"},
		{"payload truncated", `{"type":"sample","payload":"` + b64(`{"a":`) + `"}`, "decode payload JSON"},
		{"payload trailing data", `{"type":"sample","payload":"` + b64(`{"a":1}x`) + `"}`, "decode payload JSON"},
		{"empty name", `{"type":"sample","payload":"` + b64(`{"ok":1,"":1}`) + `"}`, "name is empty"},
		{"name too long", `{"type":"sample","payload":"` + b64(`{"ok":1,"`+long+`":1}`) + `"}`, "longer than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, _ := newService()
			err := s.Register(context.Background(), []byte(tt.msg))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Register error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(st.m) != 0 {
				t.Errorf("store written on error: %v", st.m)
			}
		})
	}
}

func TestNameLengthLimit(t *testing.T) {
	s, _, _ := newService()
	name := strings.Repeat("é", MaxNameLen/2) // exactly 256 bytes
	if err := s.Register(context.Background(), sampleMessage(t, "", map[string]any{name: 1})); err != nil {
		t.Fatalf("256-byte name rejected: %v", err)
	}
}

func TestStoreErrorWrapped(t *testing.T) {
	s, st, _ := newService()
	st.setErr = storage.ErrInvalidKey
	err := s.Register(context.Background(), sampleMessage(t, "", map[string]any{"a:b": 1}))
	if !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Register error = %v, want it to wrap ErrInvalidKey", err)
	}
}

func FuzzRegister(f *testing.F) {
	f.Add([]byte(`{"version":"0.1.0","type":"sample","payload":"eyJhIjpbMV19"}`))
	f.Add([]byte(`{"type":"sample","payload":"e30"}`))
	f.Add([]byte(`{"type":"corim","payload":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _, _ := newService()
		_ = s.Register(context.Background(), msg)
	})
}

// countingStore counts Get calls on a map store.
type countingStore struct {
	storage.Store
	gets int
}

func (c *countingStore) Get(ctx context.Context, k string) ([]byte, error) {
	c.gets++
	return c.Store.Get(ctx, k)
}

func TestQueryCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := newMapStore()
	cs := &countingStore{Store: base}
	s := New(cs, Options{Now: func() time.Time { return now }, CacheTTL: 2 * time.Second})
	msg := sampleMessage(t, "0.1.0", map[string]any{"svn": []string{"1"}})
	if err := s.Register(ctx, msg); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if v, err := s.Query(ctx, "svn"); err != nil || string(v) != `["1"]` {
			t.Fatalf("query: %s %v", v, err)
		}
		if v, _ := s.Query(ctx, "missing"); v != nil {
			t.Fatal("absent value returned")
		}
	}
	if cs.gets != 2 {
		t.Fatalf("storage reads: %d, want 2 (one per id)", cs.gets)
	}
	// A local Register is visible at once.
	if err := s.Register(ctx, sampleMessage(t, "0.1.0", map[string]any{"svn": []string{"2"}})); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Query(ctx, "svn"); string(v) != `["2"]` {
		t.Fatalf("after register: %s", v)
	}
	// A write by another replica is visible after the TTL.
	other := New(base, Options{Now: func() time.Time { return now }})
	if err := other.Register(ctx, sampleMessage(t, "0.1.0", map[string]any{"missing": 1})); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Query(ctx, "missing"); v != nil {
		t.Fatal("cached absence expected within the TTL")
	}
	now = now.Add(3 * time.Second)
	if v, _ := s.Query(ctx, "missing"); string(v) != "1" {
		t.Fatalf("after TTL: %s", v)
	}
	// Expiration is still enforced for cached values.
	now = now.AddDate(1, 1, 0)
	if v, _ := s.Query(ctx, "missing"); v != nil {
		t.Fatal("expired value returned")
	}
}
