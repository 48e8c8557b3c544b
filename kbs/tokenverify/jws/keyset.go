package jws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// MaxDocumentSize bounds a fetched key, key set or discovery document.
const MaxDocumentSize = 1 << 20

// refreshTimeout bounds a refetch triggered by a lookup.
const refreshTimeout = 30 * time.Second

// ErrUnknownKid is returned when no key of a key set carries the wanted kid.
var ErrUnknownKid = errors.New("no key with this kid")

// Fetch reads a document from an https:// URL (with client), a file:// URL
// or a local path. Other schemes (including plain http://) are rejected.
func Fetch(ctx context.Context, client *http.Client, uri string) ([]byte, error) {
	switch {
	case strings.HasPrefix(uri, "https://"):
		return fetchHTTPS(ctx, client, uri)
	case strings.HasPrefix(uri, "file://"):
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", uri, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file URI %q: a host is not supported (use file:///absolute/path)", uri)
		}
		return readFile(u.Path)
	case strings.Contains(uri, "://"):
		return nil, fmt.Errorf("unsupported scheme in %q (expected https://, file:// or a path)", uri)
	case uri == "":
		return nil, errors.New("empty URI")
	default:
		return readFile(uri)
	}
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path)
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > MaxDocumentSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", what, MaxDocumentSize)
	}
	return b, nil
}

func fetchHTTPS(ctx context.Context, client *http.Client, uri string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json, application/x-pem-file, */*")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: HTTP status %d", uri, resp.StatusCode)
	}
	return readLimited(resp.Body, uri)
}

// FetchJWKSet loads a JWK set from uri. For https:// URIs that do not serve
// a JWK set directly, it falls back to OpenID discovery:
// <uri>/.well-known/openid-configuration → jwks_uri (which must be https://).
func FetchJWKSet(ctx context.Context, client *http.Client, uri string) ([]*JWK, []error, error) {
	data, err := Fetch(ctx, client, uri)
	if err == nil {
		keys, skipped, perr := ParseJWKSet(data)
		if perr == nil {
			return keys, skipped, nil
		}
		err = perr
	}
	if !strings.HasPrefix(uri, "https://") {
		return nil, nil, err
	}
	directErr := err
	disc := strings.TrimRight(uri, "/") + "/.well-known/openid-configuration"
	data, err = Fetch(ctx, client, disc)
	if err != nil {
		return nil, nil, fmt.Errorf("JWK set %s: %w; OpenID discovery: %w", uri, directErr, err)
	}
	var cfg struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil || cfg.JWKSURI == "" {
		return nil, nil, fmt.Errorf("JWK set %s: %w; OpenID discovery document has no jwks_uri", uri, directErr)
	}
	if !strings.HasPrefix(cfg.JWKSURI, "https://") {
		return nil, nil, fmt.Errorf("OpenID discovery at %s: jwks_uri %q is not https", disc, cfg.JWKSURI)
	}
	data, err = Fetch(ctx, client, cfg.JWKSURI)
	if err != nil {
		return nil, nil, err
	}
	return ParseJWKSet(data)
}

// KeySetOptions configures a KeySet.
type KeySetOptions struct {
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	// MinRefreshInterval is the least time between two fetches triggered by
	// unknown kids (default 30 s).
	MinRefreshInterval time.Duration
	// MaxAge makes a lookup refetch the set once it is older than this
	// (default 1 h; negative disables).
	MaxAge time.Duration
}

// KeySet is a JWK set loaded from a URI and cached by kid. A lookup of an
// unknown kid, or one after MaxAge, refetches the set, at most once per
// MinRefreshInterval. A failed refetch keeps the previous keys.
type KeySet struct {
	uri    string
	opts   KeySetOptions
	mu     sync.RWMutex
	keys   map[string]*JWK
	loaded time.Time

	refreshMu   sync.Mutex
	lastAttempt time.Time
}

// NewKeySet fetches the set once; a failure is returned.
func NewKeySet(ctx context.Context, uri string, opts KeySetOptions) (*KeySet, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = 30 * time.Second
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = time.Hour
	}
	ks := &KeySet{uri: uri, opts: opts}
	ks.lastAttempt = opts.Now()
	if err := ks.fetch(ctx); err != nil {
		return nil, err
	}
	return ks, nil
}

// URI returns the source of the set.
func (ks *KeySet) URI() string { return ks.uri }

func (ks *KeySet) fetch(ctx context.Context) error {
	keys, skipped, err := FetchJWKSet(ctx, ks.opts.HTTPClient, ks.uri)
	if err != nil {
		return fmt.Errorf("load JWK set %s: %w", ks.uri, err)
	}
	for _, e := range skipped {
		ks.opts.Logger.DebugContext(ctx, "skipping JWK", "jwk_set", ks.uri, "error", e)
	}
	m := make(map[string]*JWK, len(keys))
	for _, k := range keys {
		if k.Kid == "" {
			ks.opts.Logger.DebugContext(ctx, "skipping JWK without kid", "jwk_set", ks.uri)
			continue
		}
		if _, dup := m[k.Kid]; !dup {
			m[k.Kid] = k
		}
	}
	ks.mu.Lock()
	ks.keys = m
	ks.loaded = ks.opts.Now()
	ks.mu.Unlock()
	return nil
}

func (ks *KeySet) get(kid string) (*JWK, time.Time) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[kid], ks.loaded
}

// Lookup returns the key with this kid, refetching the set when the kid is
// unknown or the set is stale (rate-limited).
func (ks *KeySet) Lookup(ctx context.Context, kid string) (*JWK, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: empty kid", ErrUnknownKid)
	}
	k, loaded := ks.get(kid)
	now := ks.opts.Now()
	if k != nil && (ks.opts.MaxAge < 0 || now.Sub(loaded) < ks.opts.MaxAge) {
		return k, nil
	}
	ks.refreshMu.Lock()
	defer ks.refreshMu.Unlock()
	// Another caller may have refreshed meanwhile.
	if k2, loaded2 := ks.get(kid); loaded2.After(loaded) {
		if k2 == nil {
			return nil, fmt.Errorf("%w %q in %s", ErrUnknownKid, kid, ks.uri)
		}
		return k2, nil
	}
	if now.Sub(ks.lastAttempt) < ks.opts.MinRefreshInterval {
		if k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w %q in %s", ErrUnknownKid, kid, ks.uri)
	}
	ks.lastAttempt = now
	// The refresh serves every caller: one caller going away must not
	// abort it (and burn the rate limit), so detach it from ctx's
	// cancellation but bound it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	if err := ks.fetch(fctx); err != nil {
		ks.opts.Logger.WarnContext(ctx, "JWK set refresh failed", "jwk_set", ks.uri, "error", err)
		if k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w %q in %s (refresh failed: %w)", ErrUnknownKid, kid, ks.uri, err)
	}
	if k2, _ := ks.get(kid); k2 != nil {
		return k2, nil
	}
	return nil, fmt.Errorf("%w %q in %s", ErrUnknownKid, kid, ks.uri)
}
