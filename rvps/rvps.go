// Package rvps is Sigil's built-in Reference Value Provider Service.
//
// Reference values are registered as provenance messages
// (`{"version":"0.1.0","type":"sample|swid|corim","payload":"…"}`), turned
// into named values by a per-type Extractor, and stored in the
// "reference_value" namespace under their name, in Trustee's stored format:
//
//	{"version":"0.1.0","name":"<name>","expiration":"YYYY-MM-DDTHH:MM:SSZ","value":<any JSON>}
//
// so a store shared with Trustee's RVPS is readable by both.
//
// Extractors: "sample" and "swid". "corim" is not implemented yet and, like
// any unknown type, fails with Trustee's "Could not find extractor for corim".
// Neither Trustee nor Sigil verifies manifest signatures, so the register
// operation must be restricted to administrators.
//
// Deliberate difference from Trustee: Query enforces the expiration that
// Register records (Trustee stores it but ignores it at query time).
package rvps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/storage"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// MessageVersion is the only register-message version accepted, and the
// version written into stored reference values.
const MessageVersion = "0.1.0"

// MaxNameLen is the longest reference-value name (in bytes) accepted.
const MaxNameLen = 256

// expirationLayout is the stored expiration format (UTC, seconds precision).
const expirationLayout = "2006-01-02T15:04:05Z"

// validity is how long a registered reference value stays valid, in months.
const validityMonths = 12

// ReferenceValue is one named value produced by an Extractor.
type ReferenceValue struct {
	Name  string
	Value json.RawMessage
}

// Extractor turns the payload of a register message of one type into
// reference values. Implementations must not panic on malformed payloads.
type Extractor interface {
	Extract(payload string) ([]ReferenceValue, error)
}

// Options configures a Service.
type Options struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// CacheTTL, when positive, keeps query results (including "absent") in
	// memory for that long, so an appraisal does not go to storage for every
	// query_reference_value call. Register on this Service invalidates the
	// names it writes at once; a value written by another replica becomes
	// visible within CacheTTL.
	CacheTTL time.Duration
}

// maxCacheEntries bounds the query cache; past it the cache is emptied.
const maxCacheEntries = 4096

type cacheEntry struct {
	value      json.RawMessage // nil: absent
	expiration time.Time       // of the stored value
	fetched    time.Time
}

// Service registers and queries reference values. It is safe for concurrent
// use if its Store is.
type Service struct {
	store      storage.Store
	now        func() time.Time
	extractors map[string]Extractor
	ttl        time.Duration
	mu         sync.RWMutex
	cache      map[string]cacheEntry
}

// New returns a Service that keeps its values in store (normally the
// storage.NamespaceReferenceValue namespace).
func New(store storage.Store, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		store: store,
		now:   now,
		extractors: map[string]Extractor{
			"sample": sampleExtractor{},
			"swid":   swidExtractor{},
		},
		ttl:   opts.CacheTTL,
		cache: map[string]cacheEntry{},
	}
}

// storedValue is the persisted form of a reference value. Field order matches
// Trustee's serialization.
type storedValue struct {
	Version    string          `json:"version"`
	Name       string          `json:"name"`
	Expiration string          `json:"expiration"`
	Value      json.RawMessage `json:"value"`
}

// message is a parsed register message.
type message struct {
	version string
	typ     string
	payload string
}

// parseMessage decodes a register message strictly: member names are matched
// exactly, "type" and "payload" are required strings, "version" is an
// optional string defaulting to MessageVersion. Unknown members are ignored.
func parseMessage(raw []byte) (message, error) {
	// Strict: with a duplicated "payload" encoding/json keeps the last one,
	// and two readers of one message could register different values.
	var members map[string]json.RawMessage
	if err := strictjson.Unmarshal(raw, &members); err != nil {
		return message{}, fmt.Errorf("rvps: parse register message: %w", err)
	}
	if members == nil {
		return message{}, errors.New("rvps: parse register message: not a JSON object")
	}
	m := message{version: MessageVersion}
	if v, ok := members["version"]; ok {
		if err := unmarshalString(v, &m.version); err != nil {
			return message{}, fmt.Errorf("rvps: parse register message: version: %w", err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"type", &m.typ}, {"payload", &m.payload}} {
		v, ok := members[f.name]
		if !ok {
			return message{}, fmt.Errorf("rvps: parse register message: missing field %q", f.name)
		}
		if err := unmarshalString(v, f.dst); err != nil {
			return message{}, fmt.Errorf("rvps: parse register message: %s: %w", f.name, err)
		}
	}
	return m, nil
}

// unmarshalString decodes a JSON string, rejecting null and other types.
func unmarshalString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return errors.New("not a JSON string")
	}
	return json.Unmarshal(raw, dst)
}

// Register parses a register message and stores every reference value its
// extractor yields, overwriting values of the same name. Names are all
// validated before anything is written.
func (s *Service) Register(ctx context.Context, msg []byte) error {
	m, err := parseMessage(msg)
	if err != nil {
		return err
	}
	if m.version != MessageVersion {
		//lint:ignore ST1005 Trustee's exact text.
		return fmt.Errorf("Version unmatched! Need %s, given %s.", MessageVersion, m.version)
	}
	ex, ok := s.extractors[m.typ]
	if !ok {
		//lint:ignore ST1005 Trustee's exact text.
		return fmt.Errorf("Could not find extractor for %s", m.typ)
	}
	rvs, err := ex.Extract(m.payload)
	if err != nil {
		return fmt.Errorf("rvps: %s extractor: %w", m.typ, err)
	}
	for _, rv := range rvs {
		if err := validateName(rv.Name); err != nil {
			return err
		}
	}
	expiration := addMonths(s.now().UTC().Truncate(time.Second), validityMonths).Format(expirationLayout)
	for _, rv := range rvs {
		value := rv.Value
		if len(value) == 0 {
			value = json.RawMessage("null")
		}
		enc, err := encodeStored(storedValue{
			Version:    MessageVersion,
			Name:       rv.Name,
			Expiration: expiration,
			Value:      value,
		})
		if err != nil {
			return fmt.Errorf("rvps: encode reference value %q: %w", rv.Name, err)
		}
		err = s.store.Set(ctx, rv.Name, enc)
		s.invalidate(rv.Name)
		if err != nil {
			return fmt.Errorf("rvps: store reference value %q: %w", rv.Name, err)
		}
	}
	return nil
}

// Query returns the value of the reference value id, or (nil, nil) when
// there is none.
//
// Unlike Trustee, which records an expiration but never checks it, Query
// treats a value whose expiration has been reached as absent and returns
// (nil, nil). The stored value is left in place; re-registering it renews it.
func (s *Service) Query(ctx context.Context, id string) (json.RawMessage, error) {
	now := s.now()
	if s.ttl > 0 {
		s.mu.RLock()
		e, ok := s.cache[id]
		s.mu.RUnlock()
		if ok && now.Sub(e.fetched) < s.ttl && !now.Before(e.fetched) {
			if e.value == nil || !now.Before(e.expiration) {
				return nil, nil
			}
			return e.value, nil
		}
	}
	value, exp, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.ttl > 0 {
		s.mu.Lock()
		if len(s.cache) >= maxCacheEntries {
			clear(s.cache)
		}
		s.cache[id] = cacheEntry{value: value, expiration: exp, fetched: now}
		s.mu.Unlock()
	}
	if value == nil || !now.Before(exp) {
		return nil, nil
	}
	return value, nil
}

func (s *Service) invalidate(name string) {
	if s.ttl > 0 {
		s.mu.Lock()
		delete(s.cache, name)
		s.mu.Unlock()
	}
}

// Invalidate drops the cached query result of name (every result when
// name is ""): another replica changed it. Without a call, a change by
// another replica is seen within CacheTTL.
func (s *Service) Invalidate(name string) {
	if name == "" {
		s.mu.Lock()
		clear(s.cache)
		s.mu.Unlock()
		return
	}
	s.invalidate(name)
}

// load reads id from storage: its value (nil when absent) and expiration.
func (s *Service) load(ctx context.Context, id string) (json.RawMessage, time.Time, error) {
	raw, err := s.store.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("rvps: get reference value %q: %w", id, err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, time.Time{}, fmt.Errorf("rvps: decode stored reference value %q: %w", id, err)
	}
	var expText string
	if err := unmarshalString(members["expiration"], &expText); err != nil {
		return nil, time.Time{}, fmt.Errorf("rvps: stored reference value %q: expiration: %w", id, err)
	}
	exp, err := time.Parse(time.RFC3339, expText)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("rvps: stored reference value %q: bad expiration: %w", id, err)
	}
	value, ok := members["value"]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("rvps: stored reference value %q has no value", id)
	}
	return value, exp, nil
}

// validateName checks a reference-value name before it is used as a key.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("rvps: reference value name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("rvps: reference value name is %d bytes, longer than %d", len(name), MaxNameLen)
	}
	return nil
}

// encodeStored serializes v compactly without HTML escaping (as serde_json
// does).
func encodeStored(v storedValue) ([]byte, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, v.Value); err != nil {
		return nil, err
	}
	v.Value = compact.Bytes()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// addMonths adds n months to t, clamping the day to the last day of the
// resulting month (so Feb 29 + 12 months = Feb 28), as chrono's
// checked_add_months does; time.AddDate would roll over into March instead.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	lastDay := first.AddDate(0, 1, -1).Day()
	if d > lastDay {
		d = lastDay
	}
	return first.AddDate(0, 0, d-1)
}
