// Package kds fetches AMD SEV-SNP endorsement certificates: from AMD's Key
// Distribution Service (KDS) over HTTP, with an in-memory cache and
// rate-limit (HTTP 429 / Retry-After) awareness, or from an offline
// directory laid out like Trustee's "OfflineStore" VCEK source.
//
// KDS endpoints used (AMD "Versioned Chip Endorsement Key (VCEK)
// Certificate and KDS Interface Specification"):
//
//	GET {base}/vcek/v1/{product}/{hwid}?blSPL=BL&teeSPL=TEE&snpSPL=SNP&ucodeSPL=UC   VCEK, DER
//	GET {base}/vcek/v1/Turin/{hwid8}?fmcSPL=F&blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..
//	GET {base}/vcek/v1/{product}/cert_chain                                        ASK+ARK, PEM
//	GET {base}/vlek/v1/{product}/cert_chain                                        ASVK+ARK, PEM
//	GET {base}/vcek/v1/{product}/crl                                               CRL, DER
//
// hwid is the report's CHIP_ID in lower-case hex (64 bytes; Turin uses the
// first 8 bytes only); SPLs are decimal, zero-padded to two digits.
//
// CRLs come from the same places: the KDS (cached for Options.CRLTTL,
// served stale when a refresh fails), an offline store's crl/ folder, or
// several of them in order (CRLSources).
package kds

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is AMD's KDS.
const DefaultBaseURL = "https://kdsintf.amd.com"

// Errors.
var (
	// ErrNotFound means the source has no such certificate or CRL (HTTP
	// 404, or no file in the offline store).
	ErrNotFound = errors.New("kds: not found")
	// ErrRateLimited means the KDS answered 429 and the Retry-After time has
	// not passed yet. The concrete error is a *RateLimitError.
	ErrRateLimited = errors.New("kds: rate limited")
	// ErrBadRequest means the request cannot be formed (bad chip id, missing
	// fmc for Turin, unknown product).
	ErrBadRequest = errors.New("kds: bad request")
)

// RateLimitError reports a 429 answer; errors.Is(err, ErrRateLimited) holds.
type RateLimitError struct {
	// Until is when the KDS may be asked again.
	Until time.Time
}

func (e *RateLimitError) Error() string {
	return "kds: rate limited until " + e.Until.UTC().Format(time.RFC3339)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// TCB is the TCB a VCEK is requested for.
type TCB struct {
	HasFMC     bool // Turin: the fmcSPL parameter is sent
	FMC        uint8
	Bootloader uint8
	TEE        uint8
	SNP        uint8
	Microcode  uint8
}

// VCEKRequest identifies one VCEK.
type VCEKRequest struct {
	// Product is the KDS product name: "Milan", "Genoa" or "Turin".
	Product string
	// ChipID is the report's CHIP_ID (64 bytes).
	ChipID []byte
	// TCB is the report's REPORTED_TCB.
	TCB TCB
}

func (r VCEKRequest) turin() bool { return strings.EqualFold(r.Product, "Turin") }

// HWID returns the hwid path element: lower-case hex of CHIP_ID, only its
// first 8 bytes for Turin.
func (r VCEKRequest) HWID() (string, error) {
	if len(r.ChipID) != 64 {
		return "", fmt.Errorf("%w: chip id is %d bytes, want 64", ErrBadRequest, len(r.ChipID))
	}
	zero := true
	for _, b := range r.ChipID {
		if b != 0 {
			zero = false
			break
		}
	}
	if zero {
		return "", fmt.Errorf("%w: chip id is zero (MASK_CHIP_ID set?)", ErrBadRequest)
	}
	if r.turin() {
		return hex.EncodeToString(r.ChipID[:8]), nil
	}
	return hex.EncodeToString(r.ChipID), nil
}

func (r VCEKRequest) validate() error {
	if !validProduct(r.Product) {
		return fmt.Errorf("%w: product %q", ErrBadRequest, r.Product)
	}
	if r.turin() && !r.TCB.HasFMC {
		return fmt.Errorf("%w: a Turin VCEK needs an fmc SPL", ErrBadRequest)
	}
	return nil
}

func validProduct(p string) bool {
	switch p {
	case "Milan", "Genoa", "Turin":
		return true
	}
	return false
}

// Path returns the request's URL path and query, e.g.
// "/vcek/v1/Milan/<hwid>?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115".
func (r VCEKRequest) Path() (string, error) {
	if err := r.validate(); err != nil {
		return "", err
	}
	hwid, err := r.HWID()
	if err != nil {
		return "", err
	}
	spl := func(v uint8) string { return fmt.Sprintf("%02d", v) }
	q := ""
	if r.turin() {
		q = "fmcSPL=" + spl(r.TCB.FMC) + "&"
	}
	q += "blSPL=" + spl(r.TCB.Bootloader) + "&teeSPL=" + spl(r.TCB.TEE) +
		"&snpSPL=" + spl(r.TCB.SNP) + "&ucodeSPL=" + spl(r.TCB.Microcode)
	return "/vcek/v1/" + r.Product + "/" + hwid + "?" + q, nil
}

// TCBPrefix returns the offline-store file name prefix for the request's
// TCB: "bl03_tee00_snp08_ucode115", with "_fmcNN" appended for Turin.
func (r VCEKRequest) TCBPrefix() string {
	s := fmt.Sprintf("bl%02d_tee%02d_snp%02d_ucode%02d", r.TCB.Bootloader, r.TCB.TEE, r.TCB.SNP, r.TCB.Microcode)
	if r.turin() {
		s += fmt.Sprintf("_fmc%02d", r.TCB.FMC)
	}
	return s
}

// Source yields VCEK certificates (DER).
type Source interface {
	VCEK(ctx context.Context, req VCEKRequest) ([]byte, error)
}

// Options configures a Client.
type Options struct {
	// BaseURL is the KDS base URL; "" means DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for Retry-After and CRL freshness; nil means time.Now.
	Now func() time.Time
	// MaxCacheEntries bounds the response cache; 0 means 4096. VCEKs and
	// certificate chains never change for a URL, so entries do not expire;
	// CRLs are kept until their NextUpdate-independent TTL (CRLTTL).
	MaxCacheEntries int
	// CRLTTL is how long a fetched CRL is reused; 0 means 1 hour. When a
	// refresh fails, the expired CRL is served instead (its signature and
	// NextUpdate are the verifier's to judge).
	CRLTTL time.Duration
	// CRLRetry is how long a failed CRL fetch is remembered and answered
	// (with the expired CRL, or the error) without asking the KDS again,
	// so that an unreachable KDS does not cost every verification a
	// timeout; 0 means 1 minute.
	CRLRetry time.Duration
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// Stats counts cache use.
type Stats struct {
	Hits    int // answered from the cache
	Fetches int // HTTP requests sent
	Limited int // requests refused locally or remotely because of 429
}

type cacheEntry struct {
	body    []byte
	expires time.Time // zero: never
}

// failedFetch remembers a failed CRL fetch until a retry is due.
type failedFetch struct {
	err   error
	until time.Time
}

// Client is an AMD KDS client. It is safe for concurrent use.
type Client struct {
	base     string
	http     *http.Client
	now      func() time.Time
	max      int
	crlTTL   time.Duration
	crlRetry time.Duration
	log      *slog.Logger

	mu           sync.Mutex
	cache        map[string]cacheEntry
	failed       map[string]failedFetch
	blockedUntil time.Time
	stats        Stats
}

// New returns a KDS client.
func New(opts Options) (*Client, error) {
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("kds: invalid base URL %q", base)
	}
	c := &Client{
		base:     strings.TrimRight(base, "/"),
		http:     opts.HTTPClient,
		now:      opts.Now,
		max:      opts.MaxCacheEntries,
		crlTTL:   opts.CRLTTL,
		crlRetry: opts.CRLRetry,
		log:      opts.Logger,
		cache:    map[string]cacheEntry{},
		failed:   map[string]failedFetch{},
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.max <= 0 {
		c.max = 4096
	}
	if c.crlTTL <= 0 {
		c.crlTTL = time.Hour
	}
	if c.crlRetry <= 0 {
		c.crlRetry = time.Minute
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Stats returns the cache counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// VCEK fetches (or returns the cached) VCEK for req, DER encoded.
func (c *Client) VCEK(ctx context.Context, req VCEKRequest) ([]byte, error) {
	path, err := req.Path()
	if err != nil {
		return nil, err
	}
	return c.get(ctx, path, 64<<10, 0)
}

// CertChain fetches the PEM chain of a product: ASK then ARK for kind
// "vcek", ASVK then ARK for kind "vlek".
func (c *Client) CertChain(ctx context.Context, product, kind string) ([]byte, error) {
	if !validProduct(product) || (kind != "vcek" && kind != "vlek") {
		return nil, fmt.Errorf("%w: cert_chain for %q/%q", ErrBadRequest, product, kind)
	}
	return c.get(ctx, "/"+kind+"/v1/"+product+"/cert_chain", 64<<10, 0)
}

// CRL fetches the DER CRL the product's ARK issues (it lists revoked ASKs
// and ASVKs). A fetched CRL is reused for CRLTTL; when a refresh fails the
// expired copy is returned. A failure is remembered for CRLRetry (the
// expired copy, or the error, is the answer meanwhile). It satisfies the
// snp package's CRL getter.
func (c *Client) CRL(ctx context.Context, product string) ([]byte, error) {
	if !validProduct(product) {
		return nil, fmt.Errorf("%w: crl for %q", ErrBadRequest, product)
	}
	path := "/vcek/v1/" + product + "/crl"
	now := c.now()
	c.mu.Lock()
	if f, ok := c.failed[path]; ok && now.Before(f.until) {
		e, cached := c.cache[path]
		c.mu.Unlock()
		if cached {
			return e.body, nil
		}
		return nil, f.err
	}
	c.mu.Unlock()
	body, err := c.get(ctx, path, 1<<20, c.crlTTL)
	if err == nil {
		c.mu.Lock()
		delete(c.failed, path)
		c.mu.Unlock()
		return body, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) >= c.max {
		clear(c.failed)
	}
	c.failed[path] = failedFetch{err: err, until: now.Add(c.crlRetry)}
	if e, ok := c.cache[path]; ok {
		c.log.WarnContext(ctx, "AMD KDS CRL refresh failed; serving the cached CRL", "product", product, "error", err)
		return e.body, nil
	}
	return nil, err
}

// CRLSource yields the DER (or PEM) CRL issued by a product's ARK
// ("Milan", "Genoa", "Turin"). *Client, *OfflineStore and CRLSources
// implement it.
type CRLSource interface {
	CRL(ctx context.Context, product string) ([]byte, error)
}

// CRLSources asks each source in order and returns the first CRL found.
// With no sources, or when every source fails, the error joins the
// sources' errors (ErrNotFound when nothing is configured).
type CRLSources []CRLSource

// CRL implements CRLSource.
func (s CRLSources) CRL(ctx context.Context, product string) ([]byte, error) {
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: no CRL source is configured", ErrNotFound)
	}
	var errs []error
	for _, src := range s {
		b, err := src.CRL(ctx, product)
		if err == nil && len(b) > 0 {
			return b, nil
		}
		if err == nil {
			err = fmt.Errorf("%w: empty CRL", ErrNotFound)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (c *Client) get(ctx context.Context, path string, limit int64, ttl time.Duration) ([]byte, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.cache[path]; ok && (e.expires.IsZero() || now.Before(e.expires)) {
		c.stats.Hits++
		c.mu.Unlock()
		return e.body, nil
	}
	if now.Before(c.blockedUntil) {
		c.stats.Limited++
		until := c.blockedUntil
		c.mu.Unlock()
		return nil, &RateLimitError{Until: until}
	}
	c.stats.Fetches++
	c.mu.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("kds: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kds: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: GET %s", ErrNotFound, path)
	case http.StatusTooManyRequests:
		until := retryAfter(resp.Header.Get("Retry-After"), c.now())
		c.mu.Lock()
		if until.After(c.blockedUntil) {
			c.blockedUntil = until
		}
		c.stats.Limited++
		c.mu.Unlock()
		c.log.WarnContext(ctx, "AMD KDS rate limit", "path", path, "retry_after", until)
		return nil, &RateLimitError{Until: until}
	default:
		return nil, fmt.Errorf("kds: GET %s: HTTP %d", path, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("kds: GET %s: %w", path, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("kds: GET %s: response larger than %d bytes", path, limit)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("kds: GET %s: empty response", path)
	}
	c.log.DebugContext(ctx, "fetched from AMD KDS", "path", path, "bytes", len(body))
	e := cacheEntry{body: body}
	if ttl > 0 {
		e.expires = c.now().Add(ttl)
	}
	c.mu.Lock()
	if len(c.cache) >= c.max {
		// Simple bound: drop everything; VCEK look-ups are rare and cheap
		// to redo compared with keeping an LRU.
		clear(c.cache)
	}
	c.cache[path] = e
	c.mu.Unlock()
	return body, nil
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP date). A
// missing or unparsable value means 60 seconds.
func retryAfter(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return now.Add(time.Minute)
}

// OfflineStore reads VCEKs from a directory, using the layout of Trustee's
// OfflineStore VCEK source, and ARK-issued CRLs (a Sigil addition):
//
//	{dir}/vcek/{hwid}/{tcb_prefix}_vcek.der   preferred
//	{dir}/vcek/{hwid}/vcek.der                fallback (one VCEK per chip)
//	{dir}/crl/{product}.crl                   the KDS's /vcek/v1/{product}/crl
//
// hwid is the lower-case hex chip id as the KDS URL uses it (64 bytes; the
// first 8 for Turin — for Turin the full 64-byte form is tried as well).
// tcb_prefix is VCEKRequest.TCBPrefix, e.g. "bl03_tee00_snp08_ucode115"
// ("_fmcNN" appended for Turin). product is "Milan", "Genoa" or "Turin"
// (the lower-case spelling is accepted too). Files are DER (PEM is accepted
// too; the verifier decodes either).
type OfflineStore struct {
	dir string
}

// NewOfflineStore returns a store rooted at dir (Trustee's default is
// /opt/confidential-containers/attestation-service/kds-store).
func NewOfflineStore(dir string) *OfflineStore { return &OfflineStore{dir: dir} }

// VCEK reads the VCEK for req.
func (s *OfflineStore) VCEK(ctx context.Context, req VCEKRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	hwid, err := req.HWID()
	if err != nil {
		return nil, err
	}
	ids := []string{hwid}
	if full := hex.EncodeToString(req.ChipID); full != hwid {
		ids = append(ids, full)
	}
	for _, id := range ids {
		for _, name := range []string{req.TCBPrefix() + "_vcek.der", "vcek.der"} {
			p := filepath.Join(s.dir, "vcek", id, name)
			b, err := os.ReadFile(p)
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("kds: offline store: %w", err)
			}
		}
	}
	return nil, fmt.Errorf("%w: offline store has no VCEK for %s", ErrNotFound, hwid)
}

// CRL reads the ARK-issued CRL of product from {dir}/crl/{product}.crl
// ({product} as the KDS spells it, or lower case). A missing file is
// ErrNotFound.
func (s *OfflineStore) CRL(ctx context.Context, product string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validProduct(product) {
		return nil, fmt.Errorf("%w: crl for %q", ErrBadRequest, product)
	}
	for _, name := range []string{product, strings.ToLower(product)} {
		b, err := os.ReadFile(filepath.Join(s.dir, "crl", name+".crl"))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("kds: offline store: %w", err)
		}
	}
	return nil, fmt.Errorf("%w: offline store has no CRL for %s", ErrNotFound, product)
}
