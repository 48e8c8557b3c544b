package nras

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sigil-attestation/sigil/verifier/nvidia"
)

// Defaults.
const (
	// DefaultBaseURL is NVIDIA's production NRAS.
	DefaultBaseURL = "https://nras.attestation.nvidia.com"
	// DefaultTimeout is the per-request timeout (Trustee uses 60 s).
	DefaultTimeout = 60 * time.Second
	// DefaultMaxResponseBytes bounds an attestation response. An 8-GPU
	// detached EAT is about 30 KB.
	DefaultMaxResponseBytes = 4 << 20
	// DefaultJWKSMinRefresh is the least time between two JWKS fetches
	// triggered by unknown kids.
	DefaultJWKSMinRefresh = 30 * time.Second
	// ClaimsVersion is the NRAS claims version requested (as Trustee).
	ClaimsVersion = "3.0"
	// NonceSize is the size of the nonce NRAS expects (64 hex characters).
	NonceSize = 32
)

// Kinds of Attest.
const (
	KindGPU    = "gpu"
	KindSwitch = "switch"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the NRAS base; DefaultBaseURL when empty. A trailing
	// slash is ignored.
	BaseURL string
	// AttestURL is the prefix of the attestation endpoints, to which
	// "/gpu" or "/switch" is appended: Trustee's verifier_url. Empty means
	// <BaseURL>/v4/attest.
	AttestURL string
	// JWKSURL is where the signing keys are fetched; empty means
	// <BaseURL>/.well-known/jwks.json.
	JWKSURL string
	// Issuer is the iss every token must carry; empty means BaseURL.
	Issuer string
	// ServiceKey, when set, is sent as "Authorization: Bearer <key>". It is
	// never logged.
	ServiceKey string
	// HTTPClient performs the requests; nil means a client without a
	// client-level timeout (Timeout and the context bound each call).
	HTTPClient *http.Client
	// Timeout bounds each Attest call (request, JWKS refresh, reading);
	// 0 means DefaultTimeout, negative means only the context.
	Timeout time.Duration
	// MaxResponseBytes bounds the attestation response body; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// JWKSMinRefresh is the least time between JWKS fetches caused by an
	// unknown kid; 0 means DefaultJWKSMinRefresh.
	JWKSMinRefresh time.Duration
	// Leeway is the tolerated clock skew for exp/nbf/iat; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// Now is the clock for token validity and the JWKS rate limit; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// Client talks to NRAS. It is safe for concurrent use.
type Client struct {
	attestURL  string
	issuer     string
	serviceKey string
	http       *http.Client
	timeout    time.Duration
	maxResp    int64
	leeway     time.Duration
	now        func() time.Time
	log        *slog.Logger
	keys       *keyCache
}

// New returns a Client configured by opts.
func New(opts Options) (*Client, error) {
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if err := checkURL(base); err != nil {
		return nil, fmt.Errorf("nras: BaseURL: %w", err)
	}
	c := &Client{
		attestURL:  strings.TrimRight(opts.AttestURL, "/"),
		issuer:     opts.Issuer,
		serviceKey: opts.ServiceKey,
		http:       opts.HTTPClient,
		timeout:    opts.Timeout,
		maxResp:    opts.MaxResponseBytes,
		leeway:     opts.Leeway,
		now:        opts.Now,
		log:        opts.Logger,
	}
	if c.attestURL == "" {
		c.attestURL = base + "/v4/attest"
	} else if err := checkURL(c.attestURL); err != nil {
		return nil, fmt.Errorf("nras: AttestURL: %w", err)
	}
	jwksURL := opts.JWKSURL
	if jwksURL == "" {
		jwksURL = base + "/.well-known/jwks.json"
	} else if err := checkURL(jwksURL); err != nil {
		return nil, fmt.Errorf("nras: JWKSURL: %w", err)
	}
	if c.issuer == "" {
		c.issuer = base
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxResp <= 0 {
		c.maxResp = DefaultMaxResponseBytes
	}
	if c.leeway <= 0 {
		c.leeway = DefaultLeeway
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	minRefresh := opts.JWKSMinRefresh
	if minRefresh <= 0 {
		minRefresh = DefaultJWKSMinRefresh
	}
	c.keys = &keyCache{url: jwksURL, client: c.http, now: c.now, minRefresh: minRefresh, log: c.log}
	return c, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

type evidenceItem struct {
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

type attestRequest struct {
	Nonce         string         `json:"nonce"`
	Arch          string         `json:"arch"`
	EvidenceList  []evidenceItem `json:"evidence_list"`
	ClaimsVersion string         `json:"claims_version"`
}

// Attest sends the devices' evidence to NRAS (kind "gpu" → /gpu, "switch" →
// /switch) with nonce (NonceSize bytes, sent as hex), verifies the detached
// EAT and checks that it describes exactly the devices sent (GPU-0…GPU-n-1 or
// SWITCH-0…). All devices must share one architecture matching kind.
// Evidence given as hex is converted to base64, as Trustee does.
func (c *Client) Attest(ctx context.Context, kind string, nonce []byte, devices []nvidia.DeviceEvidence) (*Result, error) {
	body, prefix, err := buildRequest(kind, nonce, devices)
	if err != nil {
		return nil, err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	raw, err := c.post(ctx, c.attestURL+"/"+kind, body)
	if err != nil {
		return nil, err
	}
	eat, err := parseDetachedEAT(raw)
	if err != nil {
		return nil, err
	}
	keys, err := c.keys.resolve(ctx, eat.kids())
	if err != nil {
		return nil, err
	}
	res, err := eat.verify(keys, checks{nonceHex: hex.EncodeToString(nonce), issuer: c.issuer, now: c.now(), leeway: c.leeway})
	if err != nil {
		return nil, err
	}
	if len(res.Names) != len(devices) {
		return nil, fmt.Errorf("%w: %d device tokens for %d devices", ErrDevices, len(res.Names), len(devices))
	}
	for i := range devices {
		name := prefix + strconv.Itoa(i)
		if _, ok := res.Devices[name]; !ok {
			return nil, fmt.Errorf("%w: no token for %s", ErrDevices, name)
		}
	}
	c.log.DebugContext(ctx, "nras: attestation verified", "kind", kind, "devices", len(devices),
		"overall_result", res.OverallResult)
	return res, nil
}

func buildRequest(kind string, nonce []byte, devices []nvidia.DeviceEvidence) ([]byte, string, error) {
	var prefix string
	switch kind {
	case KindGPU:
		prefix = "GPU-"
	case KindSwitch:
		prefix = "SWITCH-"
	default:
		return nil, "", fmt.Errorf("%w: kind %q (want gpu or switch)", ErrRequest, kind)
	}
	if len(nonce) != NonceSize {
		return nil, "", fmt.Errorf("%w: nonce is %d bytes, want %d", ErrRequest, len(nonce), NonceSize)
	}
	if len(devices) == 0 {
		return nil, "", fmt.Errorf("%w: no devices", ErrRequest)
	}
	req := attestRequest{Nonce: hex.EncodeToString(nonce), ClaimsVersion: ClaimsVersion}
	for i, d := range devices {
		arch, err := nvidia.ParseArch(d.Arch)
		if err != nil {
			return nil, "", fmt.Errorf("%w: device %d: %w", ErrRequest, i, err)
		}
		if arch.IsSwitch() != (kind == KindSwitch) {
			return nil, "", fmt.Errorf("%w: device %d: arch %s cannot be sent to /%s", ErrRequest, i, arch, kind)
		}
		if i == 0 {
			req.Arch = string(arch)
		} else if string(arch) != req.Arch {
			return nil, "", fmt.Errorf("%w: device %d: arch %s differs from %s", ErrRequest, i, arch, req.Arch)
		}
		report, err := nvidia.DecodeReport(d.Evidence)
		if err != nil {
			return nil, "", fmt.Errorf("%w: device %d: %w", ErrRequest, i, err)
		}
		if d.Certificate == "" {
			return nil, "", fmt.Errorf("%w: device %d: no certificate", ErrRequest, i)
		}
		req.EvidenceList = append(req.EvidenceList, evidenceItem{
			Evidence:    base64.StdEncoding.EncodeToString(report),
			Certificate: d.Certificate,
		})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrRequest, err)
	}
	return body, prefix, nil
}

func (c *Client) post(ctx context.Context, u string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.serviceKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.serviceKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading response: %w", ErrTransport, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp.StatusCode, raw)
	}
	if int64(len(raw)) > c.maxResp {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, c.maxResp)
	}
	return raw, nil
}

// maxErrorMessage bounds the message kept from an error body.
const maxErrorMessage = 512

// statusError builds a *StatusError with the body's message.
func statusError(code int, body []byte) *StatusError {
	var m map[string]any
	msg := ""
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"message", "error", "errorMessage", "description", "detail", "title"} {
			if s, ok := m[k].(string); ok && s != "" {
				msg = s
				break
			}
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxErrorMessage {
		msg = strings.ToValidUTF8(msg[:maxErrorMessage], "") + "…"
	}
	return &StatusError{StatusCode: code, Message: msg}
}
