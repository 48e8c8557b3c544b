// Package kbs is Sigil's Key Broker Service HTTP server: the RCAR protocol
// (/kbs/v0/auth, /kbs/v0/attest), admin endpoints, plugin dispatch with the
// resource policy, and JWE-encrypted responses. It is wire-compatible with
// Trustee's KBS (see docs/compatibility.md for deliberate differences).
package kbs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/kbs/tokenverify"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/storage"
)

// AttestationService is the attestation backend the KBS drives (the
// built-in AS, or later a remote one).
type AttestationService interface {
	Evaluate(ctx context.Context, req *attestation.Request) (*attestation.Result, error)
	SetPolicy(ctx context.Context, id, policyB64 string) error
}

// ReferenceValueService is the RVPS behind /kbs/v0/reference-value.
type ReferenceValueService interface {
	Register(ctx context.Context, message []byte) error
	// Query returns the value JSON, or nil when absent.
	Query(ctx context.Context, id string) (json.RawMessage, error)
}

// AdminAuthorizer decides whether a request may use an admin endpoint. The
// error text is shown to the client inside Trustee's admin error detail.
type AdminAuthorizer interface {
	Authorize(ctx context.Context, r *http.Request) error
}

// TokenVerifier verifies attestation tokens presented to the KBS.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (map[string]any, error)
}

// Config assembles a Server. AS, RVPS, Admin, Tokens, Sessions and Policies
// are required; the rest have defaults.
type Config struct {
	AS     AttestationService
	RVPS   ReferenceValueService
	Admin  AdminAuthorizer
	Tokens TokenVerifier
	// ExtraTeeKeyPaths are JSON pointers tried first when looking for the
	// TEE public key in token claims.
	ExtraTeeKeyPaths []string
	// Sessions is the kbs_protocol_session namespace; Policies the kbs
	// namespace holding resource-policy.rego.
	Sessions storage.Store
	Policies storage.Store
	Plugins  map[string]Plugin
	// SessionTimeout is the RCAR session lifetime (default 5 min).
	SessionTimeout time.Duration
	// MaxSessions bounds the RCAR sessions this server holds at once; /auth
	// beyond it gets 503 TooManySessions with Retry-After. Zero means
	// DefaultMaxSessions; negative means no bound.
	MaxSessions int
	// MaxBodyBytes bounds request bodies (default 2 MiB); larger → 413.
	MaxBodyBytes int64
	Now          func() time.Time
	Rand         io.Reader
	Logger       *slog.Logger
	Metrics      *Metrics
	// JWKS, if set, is served at /.well-known/jwks.json (the AS token keys).
	JWKS []byte
	// HeaderLimit bounds the total size of request headers (a Bearer
	// token with multi-device evidence can be large); larger requests get
	// 431 with ErrorInformation naming HeaderLimitSetting. Default 512 KiB.
	HeaderLimit int
	// HeaderLimitSetting names the setting to change in the 431 detail.
	HeaderLimitSetting string
	// Ready, if set, reports whether the storage backends answer; /readyz
	// calls it (with a short deadline) and answers 503 while it fails.
	// /healthz stays liveness only.
	Ready func(ctx context.Context) error
	// PolicyOptions bound every resource-policy evaluation (deadline, step
	// budget, capped builtins) and choose whether builtins that reach
	// outside are available; zero values are the safe defaults.
	PolicyOptions policy.Options
	// PolicyCacheTTL, when positive, trusts the compiled resource policy
	// for that long before re-reading it from storage (a policy set on this
	// server applies at once; one set by another replica within the TTL).
	PolicyCacheTTL time.Duration
}

// DefaultMaxSessions bounds live RCAR sessions per server by default: with
// the default 5-minute timeout it admits 333 new guests a second, sustained,
// and bounds the in-memory store to a few hundred MiB.
const DefaultMaxSessions = 100_000

// DefaultHeaderLimit is the default request-header budget (Bearer tokens
// of 8 GPUs + 4 switches stay well below it with verbose_token = false).
const DefaultHeaderLimit = 512 << 10

// Server is the KBS. Create it with New and serve Handler().
type Server struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	policy   *resourcePolicy
	metrics  *Metrics
	handler  http.Handler
}

// New validates cfg, stores the default resource policy if none exists, and
// builds the HTTP handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.AS == nil, cfg.RVPS == nil, cfg.Admin == nil, cfg.Tokens == nil:
		return nil, errors.New("kbs: AS, RVPS, Admin and Tokens are required")
	case cfg.Sessions == nil, cfg.Policies == nil:
		return nil, errors.New("kbs: Sessions and Policies stores are required")
	}
	for _, p := range cfg.ExtraTeeKeyPaths {
		if err := tokenverify.ValidateTeeKeyPath(p); err != nil {
			return nil, fmt.Errorf("kbs: attestation_token.extra_teekey_paths: %w", err)
		}
	}
	switch {
	case cfg.MaxSessions == 0:
		cfg.MaxSessions = DefaultMaxSessions
	case cfg.MaxSessions < 0:
		cfg.MaxSessions = 0
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 5 * time.Minute
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 2 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeaderLimit <= 0 {
		cfg.HeaderLimit = DefaultHeaderLimit
	}
	if cfg.HeaderLimitSetting == "" {
		cfg.HeaderLimitSetting = "sigil.header_limit_kib"
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics("")
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		sessions: &sessions{
			store: cfg.Sessions, now: cfg.Now, timeout: cfg.SessionTimeout, rand: cfg.Rand, log: cfg.Logger,
			maxLive: cfg.MaxSessions,
		},
		policy: &resourcePolicy{store: cfg.Policies, ttl: cfg.PolicyCacheTTL, now: cfg.Now, opts: cfg.PolicyOptions},
	}
	if err := s.policy.init(ctx); err != nil {
		return nil, err
	}
	s.handler = s.accessLog(s.limitHeaders(http.HandlerFunc(s.route)))
	return s, nil
}

// route sends every request to its handler without net/http's ServeMux:
// the mux answers "..", "." and "//" segments with a redirect to the
// cleaned path before any of the KBS's own checks run, which would let
// /kbs/v0/resource/a/b/../b/c reach a real resource. Anything that is not
// one of the few fixed routes gets a 404 problem JSON, never a redirect.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(path, "/kbs/v0/") {
		s.dispatch(w, r)
		return
	}
	switch path {
	case "/metrics":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, newError(VariantMethodNotAllowed, "Method not allowed", nil))
			return
		}
		s.metrics.serve(w, r)
		return
	case "/.well-known/jwks.json":
		if s.cfg.JWKS != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(s.cfg.JWKS)
			return
		}
	case "/healthz":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
	case "/readyz":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.ready(w, r)
			return
		}
	}
	writeError(w, newError(VariantInvalidRequestPath, "Invalid Request Path", nil))
}

// ready answers /readyz: 200 when every storage backend answers within 2 s,
// else 503 StorageUnavailable with Retry-After.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			// The cause names hosts: it goes to the log, not to the client.
			s.log.Warn("not ready", "error", logSafeLong(err.Error()))
			writeError(w, newError(VariantStorageUnavailable, "Storage backend unavailable", err))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// HeaderLimit returns the request-header budget; the HTTP server's own
// limit must be above it so that this handler, not net/http, answers.
func (s *Server) HeaderLimit() int { return s.cfg.HeaderLimit }

// limitHeaders answers 431 with ErrorInformation when the request headers
// exceed the configured budget.
func (s *Server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + len(r.RequestURI) + 12
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > s.cfg.HeaderLimit {
			writeError(w, newError(VariantHeaderTooLarge, fmt.Sprintf(
				"Request headers of %d bytes exceed the limit of %s; raise %s (a large Bearer token: consider verbose_token = false)",
				n, formatBytes(int64(s.cfg.HeaderLimit)), s.cfg.HeaderLimitSetting), nil))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// InvalidateResourcePolicy makes the next request re-read the resource
// policy from storage: another replica set it. Without a call, such a
// change is seen within Config.PolicyCacheTTL.
func (s *Server) InvalidateResourcePolicy() { s.policy.invalidate() }

// Handler returns the HTTP handler of the KBS.
func (s *Server) Handler() http.Handler { return s.handler }

// RunSessionSweeper deletes expired sessions every interval until ctx ends.
func (s *Server) RunSessionSweeper(ctx context.Context, interval time.Duration) {
	s.sessions.runSweeper(ctx, interval)
}

// SweepSessions deletes expired sessions once.
func (s *Server) SweepSessions(ctx context.Context) (int, error) { return s.sessions.sweep(ctx) }

// dispatch routes /kbs/v0/<plugin>/<path...> in Trustee's order.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		writeError(w, newError(VariantMethodNotAllowed, "Method not allowed", nil))
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/kbs/v0/")
	parts, perr := splitPath(rest)
	if perr != nil {
		s.fail(w, r, newError(VariantInvalidRequestPath, "Invalid Request Path", perr))
		return
	}
	// From here on the request carries its canonical path (empty segments
	// collapsed, each segment escaped once): the admin ACL is matched
	// against what is actually addressed, not against the client's spelling.
	canon := *r.URL
	canon.Path, canon.RawPath = "/kbs/v0/"+strings.Join(parts, "/"), ""
	r2 := *r
	r2.URL = &canon
	r = &r2
	plugin := ""
	if len(parts) > 0 {
		plugin = parts[0]
		parts = parts[1:]
	}
	var err *Error
	if builtinEndpoint(plugin, r.Method) {
		// Built-in endpoints take no trailing segments (reference-value GET
		// takes an id). Ignoring extra segments would let an ACL regex
		// scoped to /kbs/v0/reference-value/<id> authorize a POST that
		// registers reference values.
		wantID := plugin == "reference-value" && r.Method == http.MethodGet
		switch {
		case wantID && len(parts) == 0:
			s.fail(w, r, newError(VariantInvalidRequestPath, "Invalid Request Path", errors.New("GET reference-value needs an id")))
			return
		case !wantID && len(parts) > 0:
			s.fail(w, r, newError(VariantInvalidRequestPath, "Invalid Request Path",
				fmt.Errorf("%s %s takes no trailing path segments", r.Method, plugin)))
			return
		}
	}
	switch {
	case plugin == "auth" && r.Method == http.MethodPost:
		err = s.handleAuth(w, r)
	case plugin == "attest" && r.Method == http.MethodPost:
		err = s.handleAttest(w, r)
	case plugin == "attestation-policy" && r.Method == http.MethodPost:
		err = s.handleSetAttestationPolicy(w, r)
	case plugin == "reference-value" && r.Method == http.MethodGet:
		err = s.handleGetReferenceValue(w, r, parts)
	case plugin == "reference-value" && r.Method == http.MethodPost:
		err = s.handleRegisterReferenceValue(w, r)
	case plugin == "resource-policy" && r.Method == http.MethodPost:
		err = s.handleSetResourcePolicy(w, r)
	case plugin == "resource-policy" && r.Method == http.MethodGet:
		err = s.handleListResourcePolicies(w, r)
	default:
		err = s.handlePlugin(w, r, plugin, parts)
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

// builtinEndpoint reports whether plugin + method names one of the KBS's
// own endpoints (RCAR and admin), which dispatch handles before plugins.
func builtinEndpoint(plugin, method string) bool {
	switch plugin {
	case "auth", "attest", "attestation-policy":
		return method == http.MethodPost
	case "reference-value", "resource-policy":
		return method == http.MethodPost || method == http.MethodGet
	}
	return false
}

// splitPath splits the escaped path after /kbs/v0/ into unescaped segments.
// Escaped slashes, "." and ".." segments and NUL bytes are rejected so no
// segment can address anything outside its plugin's namespace. Empty
// segments (as trustee-attester produces for bare paths) are collapsed.
func splitPath(escaped string) ([]string, error) {
	if len(escaped) > 4096 {
		return nil, errors.New("path too long")
	}
	var parts []string
	for _, seg := range strings.Split(escaped, "/") {
		if seg == "" {
			continue
		}
		if strings.Contains(strings.ToLower(seg), "%2f") || strings.Contains(strings.ToLower(seg), "%5c") {
			return nil, errors.New("escaped slash in path")
		}
		u, err := unescape(seg)
		if err != nil {
			return nil, err
		}
		if u == "." || u == ".." || strings.ContainsAny(u, "\x00\\") {
			return nil, errors.New("invalid path segment")
		}
		parts = append(parts, u)
	}
	return parts, nil
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Status != http.StatusServiceUnavailable && errors.Is(e, storage.ErrUnavailable) {
		// Whatever failed, it failed because the database is away: say so,
		// and that a retry may succeed.
		e = newError(VariantStorageUnavailable, "Storage backend unavailable; retry later", e)
	}
	lvl := slog.LevelInfo
	if e.Status == http.StatusNotFound {
		lvl = slog.LevelDebug
	}
	// Details and causes can quote what the client sent (a plugin name, a
	// fragment of a malformed body): they go through logSafe.
	attrs := []any{"request_id", requestID(r.Context()), "error", e.Variant, "detail", logSafe(e.Detail)}
	if e.Cause != nil {
		attrs = append(attrs, "cause", logSafeLong(e.Cause.Error()))
	}
	s.log.Log(r.Context(), lvl, "request failed", attrs...)
	writeError(w, e)
}

// readBody reads the request body within the configured limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	// The buffer grows with the bytes actually received, never from the
	// client's Content-Length: a header alone must not allocate the limit.
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(VariantPayloadTooLarge,
				"Request body exceeds the limit of "+formatBytes(s.cfg.MaxBodyBytes)+" (http_server.payload_request_size)", err)
		}
		return nil, newError(VariantSerdeError, "Serialize/Deserialize failed", err)
	}
	return b, nil
}
