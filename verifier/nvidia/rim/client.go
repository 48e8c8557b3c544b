package rim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is NVIDIA's RIM service.
const DefaultBaseURL = "https://rim.attestation.nvidia.com"

const (
	defaultCacheTTL     = time.Hour
	defaultMaxResponse  = 8 << 20
	defaultFetchTimeout = 30 * time.Second
)

// Document sources.
const (
	SourceService = "service"
	SourceOffline = "offline"
)

// Document is a RIM as delivered by the service or the offline directory.
// It is not verified: pass XML to Verifier.Verify.
type Document struct {
	ID          string    // requested RIM id
	XML         []byte    // the decoded SWID XML
	SHA256      string    // hex SHA-256 of XML (checked against the service's value)
	LastUpdated time.Time // service "last_updated" (zero for offline .xml files)
	RequestID   string    // service "request_id"
	Format      string    // "TCG"
	Source      string    // SourceService or SourceOffline
	FetchedAt   time.Time // clock time of the fetch
}

// serviceResponse is the RIM service JSON body.
type serviceResponse struct {
	ID          string `json:"id"`
	RIM         string `json:"rim"`
	SHA256      string `json:"sha256"`
	LastUpdated string `json:"last_updated"`
	RequestID   string `json:"request_id"`
	RIMFormat   string `json:"rim_format"`
}

// ClientOptions configures a Client.
type ClientOptions struct {
	// BaseURL of the RIM service; "/v1/rim/{id}" is appended. Empty means
	// DefaultBaseURL.
	BaseURL string
	// ServiceKey, when set, is sent as "Authorization: Bearer <key>".
	ServiceKey string
	// HTTPClient performs the requests; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// OfflineDir, when set, is consulted before the service. It holds one
	// file per RIM, named either "<id>.xml" (the SWID XML itself) or
	// "<id>.json" (a RIM service response body, verbatim).
	OfflineDir string
	// DisableService makes the client use only OfflineDir (air-gapped
	// deployments); a RIM missing there yields ErrNotFound.
	DisableService bool
	// CacheTTL is how long a fetched RIM is kept in memory; 0 means one hour,
	// a negative value disables caching.
	CacheTTL time.Duration
	// MaxResponseBytes bounds a service response or offline file; 0 means 8 MiB.
	MaxResponseBytes int64
	// Now is the clock for cache expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// CacheStats counts cache behaviour.
type CacheStats struct {
	Hits   int // Fetch calls answered from the cache
	Misses int // Fetch calls that went to the offline directory or service
}

type cacheEntry struct {
	doc     *Document
	expires time.Time
}

// Client fetches RIMs from the NVIDIA RIM service or an offline directory,
// with an in-memory cache. It is safe for concurrent use.
type Client struct {
	base  string
	key   string
	http  *http.Client
	dir   string
	noSvc bool
	ttl   time.Duration
	max   int64
	now   func() time.Time
	log   *slog.Logger
	mu    sync.Mutex
	cache map[string]cacheEntry
	stats CacheStats
}

// NewClient returns a RIM client.
func NewClient(opts ClientOptions) (*Client, error) {
	c := &Client{
		base:  strings.TrimRight(opts.BaseURL, "/"),
		key:   opts.ServiceKey,
		http:  opts.HTTPClient,
		dir:   opts.OfflineDir,
		noSvc: opts.DisableService,
		ttl:   opts.CacheTTL,
		max:   opts.MaxResponseBytes,
		now:   opts.Now,
		log:   opts.Logger,
		cache: map[string]cacheEntry{},
	}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	if !strings.HasPrefix(c.base, "https://") && !strings.HasPrefix(c.base, "http://") {
		return nil, fmt.Errorf("rim: base URL %q is not http(s)", opts.BaseURL)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultFetchTimeout}
	}
	if c.ttl == 0 {
		c.ttl = defaultCacheTTL
	}
	if c.max <= 0 {
		c.max = defaultMaxResponse
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.noSvc && c.dir == "" {
		return nil, errors.New("rim: DisableService requires OfflineDir")
	}
	return c, nil
}

// Stats returns the cache counters.
func (c *Client) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Fetch returns the RIM with the given id from the cache, the offline
// directory or the service, in that order. Errors wrap ErrInvalidID,
// ErrNotFound or ErrService. The returned Document may be shared with the
// cache and must not be modified.
func (c *Client) Fetch(ctx context.Context, id string) (*Document, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	now := c.now()
	c.mu.Lock()
	if e, ok := c.cache[id]; ok && now.Before(e.expires) {
		c.stats.Hits++
		c.mu.Unlock()
		return e.doc, nil
	}
	c.stats.Misses++
	c.mu.Unlock()

	doc, err := c.fetchUncached(ctx, id)
	if err != nil {
		return nil, err
	}
	doc.FetchedAt = now
	if c.ttl > 0 {
		c.mu.Lock()
		c.cache[id] = cacheEntry{doc: doc, expires: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return doc, nil
}

func (c *Client) fetchUncached(ctx context.Context, id string) (*Document, error) {
	if c.dir != "" {
		doc, err := c.fetchOffline(id)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return doc, err
		}
		if c.noSvc {
			return nil, err
		}
	}
	return c.fetchService(ctx, id)
}

func (c *Client) readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, c.max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > c.max {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrService, path, c.max)
	}
	return data, nil
}

func (c *Client) fetchOffline(id string) (*Document, error) {
	xmlPath := filepath.Join(c.dir, id+".xml")
	data, err := c.readFile(xmlPath)
	if err == nil {
		sum := sha256.Sum256(data)
		return &Document{ID: id, XML: data, SHA256: hex.EncodeToString(sum[:]), Format: "TCG", Source: SourceOffline}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("rim: read %s: %w", xmlPath, err)
	}
	jsonPath := filepath.Join(c.dir, id+".json")
	data, err = c.readFile(jsonPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s not in offline directory", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("rim: read %s: %w", jsonPath, err)
	}
	doc, err := decodeServiceResponse(id, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", jsonPath, err)
	}
	doc.Source = SourceOffline
	return doc, nil
}

func (c *Client) fetchService(ctx context.Context, id string) (*Document, error) {
	url := c.base + "/v1/rim/" + id
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrService, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrService, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrService, url, err)
	}
	if int64(len(body)) > c.max {
		return nil, fmt.Errorf("%w: response from %s exceeds %d bytes", ErrService, url, c.max)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s (HTTP 404 from %s)", ErrNotFound, id, c.base)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: HTTP %d", ErrService, url, resp.StatusCode)
	}
	doc, err := decodeServiceResponse(id, body)
	if err != nil {
		return nil, err
	}
	doc.Source = SourceService
	c.log.Debug("fetched RIM", "id", id, "request_id", doc.RequestID, "bytes", len(doc.XML))
	return doc, nil
}

// decodeServiceResponse validates a RIM service JSON body: the id must equal
// the requested one, the format must be TCG, and sha256 (when present) must
// match the decoded XML.
func decodeServiceResponse(id string, body []byte) (*Document, error) {
	var r serviceResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %v", ErrService, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: response id %q, requested %q", ErrService, r.ID, id)
	}
	if r.RIMFormat != "" && !strings.EqualFold(r.RIMFormat, "TCG") {
		return nil, fmt.Errorf("%w: unsupported rim_format %q", ErrService, r.RIMFormat)
	}
	xmlBytes, err := base64.StdEncoding.DecodeString(r.RIM)
	if err != nil {
		return nil, fmt.Errorf("%w: rim is not base64: %v", ErrService, err)
	}
	if len(xmlBytes) == 0 {
		return nil, fmt.Errorf("%w: empty rim", ErrService)
	}
	sum := sha256.Sum256(xmlBytes)
	got := hex.EncodeToString(sum[:])
	if r.SHA256 != "" && !strings.EqualFold(r.SHA256, got) {
		return nil, fmt.Errorf("%w: sha256 %s does not match the RIM (%s)", ErrService, r.SHA256, got)
	}
	doc := &Document{ID: id, XML: xmlBytes, SHA256: got, RequestID: r.RequestID, Format: "TCG"}
	if r.LastUpdated != "" {
		if t, err := time.Parse(time.RFC3339Nano, r.LastUpdated); err == nil {
			doc.LastUpdated = t
		}
	}
	return doc, nil
}
