package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/protocol"
)

// UserAgent is sent on every request.
const UserAgent = "sigil-kbs-client/0.1"

// URLPrefix is the path every KBS endpoint lives under, below the base URL.
const URLPrefix = "/kbs/v0/"

const (
	defaultTimeout = 60 * time.Second
	// maxResourceResponse bounds a resource response: the JWE JSON of a
	// 64 MiB resource (base64url grows it by 4/3) plus headroom.
	maxResourceResponse = 64<<20/3*4 + 1<<20
	// maxResponse bounds every other response body.
	maxResponse = 1 << 20
	// maxRedirects bounds same-host redirects.
	maxRedirects = 10
)

// Options configures the clients of this package. The zero value is usable.
type Options struct {
	// HTTPClient is the client to use. It is copied; the copy gets a cookie
	// jar of its own (per client) and, when it has none, a redirect policy
	// that refuses redirects to another host. nil → a client with a 60 s
	// timeout whose TLS roots are the system roots plus CertPEM.
	HTTPClient *http.Client
	// CertPEM holds extra root CA certificates (PEM) for an https KBS. It
	// cannot be combined with HTTPClient.
	CertPEM []byte
	// TeeKey is the TEE key pair whose public half is sent as tee-pubkey and
	// that decrypts resources. nil → an EC P-256 key generated once per client.
	TeeKey crypto.PrivateKey
	// InitData is the init-data TOML text sent as
	// {"format":"toml","body":…}; empty → JSON null.
	InitData []byte
	// Sleep waits between handshake retries; nil → a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock used to check token validity; nil → time.Now.
	Now func() time.Time
	// Logger receives debug and warning messages; nil → discarded. Secrets
	// (tokens, keys, resources) are never logged.
	Logger *slog.Logger
}

// ErrResourceNotFound is wrapped by errors for a resource the KBS answered 404.
var ErrResourceNotFound = errors.New("resource not found")

// ErrUnauthorized is wrapped by errors for a resource request the KBS kept
// refusing with 401.
var ErrUnauthorized = errors.New("request unauthorized")

// ServerError is a non-200 answer of the KBS.
type ServerError struct {
	// Status is the HTTP status code.
	Status int
	// Info is the parsed ErrorInformation body; zero when the body is not one.
	Info protocol.ErrorInformation
	// Body is the response body as text.
	Body string

	hasInfo bool
}

// Error renders the failure like Trustee's kbs-client
// (`Request Failed, Response: "<body>"`) followed by the status and detail.
func (e *ServerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Request Failed, Response: %q (HTTP %d", e.Body, e.Status)
	if e.Info.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Info.Detail)
	}
	b.WriteString(")")
	return b.String()
}

// HasErrorInformation reports whether the body parsed as ErrorInformation.
func (e *ServerError) HasErrorInformation() bool { return e.hasInfo }

// parseErrorInformation parses body as ErrorInformation, requiring both
// members to be strings as kbs-types does.
func parseErrorInformation(body []byte) (protocol.ErrorInformation, error) {
	var raw struct {
		Type   *string `json:"type"`
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return protocol.ErrorInformation{}, fmt.Errorf("parse ErrorInformation: %w", err)
	}
	if raw.Type == nil || raw.Detail == nil {
		return protocol.ErrorInformation{}, errors.New("parse ErrorInformation: missing field `type` or `detail`")
	}
	return protocol.ErrorInformation{Type: *raw.Type, Detail: *raw.Detail}, nil
}

// newServerError builds the ServerError of a response whose body was read.
func newServerError(status int, body []byte) *ServerError {
	e := &ServerError{Status: status, Body: string(body)}
	if info, err := parseErrorInformation(body); err == nil {
		e.Info, e.hasInfo = info, true
	}
	return e
}

// transport is the HTTP plumbing shared by the clients.
type transport struct {
	base string // scheme://host[:port][/prefix], no trailing '/'
	hc   *http.Client
	log  *slog.Logger
}

func newTransport(baseURL string, opts Options) (*transport, error) {
	base := strings.TrimRight(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("invalid KBS URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid KBS URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid KBS URL %q: missing host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid KBS URL %q: query and fragment are not allowed", baseURL)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("cookie jar: %w", err)
	}
	var hc http.Client
	switch {
	case opts.HTTPClient != nil && len(opts.CertPEM) > 0:
		return nil, errors.New("client options: CertPEM cannot be combined with HTTPClient")
	case opts.HTTPClient != nil:
		hc = *opts.HTTPClient
	default:
		hc = http.Client{Timeout: defaultTimeout}
		if len(opts.CertPEM) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(opts.CertPEM) {
				return nil, errors.New("client options: CertPEM holds no usable certificate")
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			hc.Transport = tr
		}
	}
	hc.Jar = jar
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = sameHostRedirects
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &transport{base: base, hc: &hc, log: log}, nil
}

// sameHostRedirects refuses redirects that leave the original scheme and host.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("refusing redirect from %s://%s to %s://%s", first.Scheme, first.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// endpoint returns the absolute URL of rel (relative to /kbs/v0/; it may
// carry a query).
func (t *transport) endpoint(rel string) string { return t.base + URLPrefix + rel }

// do sends a request and returns the status and the body read up to limit.
func (t *transport) do(ctx context.Context, method, rel, contentType string, body []byte, bearer string, limit int64) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.endpoint(rel), rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build %s request: %w", method, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, limit)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read response: %w", method, req.URL.Redacted(), err)
	}
	return resp.StatusCode, data, nil
}

// readLimited reads r completely, failing when it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("response body exceeds %d bytes", limit)
	}
	return data, nil
}

// marshalJSON encodes v compactly without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// defaultSleep waits d or until ctx is done.
func defaultSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
