package client

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/protocol"
)

// EvidenceProvider collects evidence for a report-data digest.
type EvidenceProvider interface {
	// Tee is the kbs-types name of the primary TEE (e.g. "sample", "tdx").
	Tee() string
	// PrimaryEvidence returns the primary TEE's evidence binding reportData.
	PrimaryEvidence(ctx context.Context, reportData []byte) (json.RawMessage, error)
	// AdditionalEvidence returns the additional_evidence string (a JSON
	// object tee→evidence, or "" when there are no devices) for the device
	// runtime-data digest.
	AdditionalEvidence(ctx context.Context, reportData []byte) (string, error)
}

const (
	// maxHandshakes is how often Attest tries the RCAR handshake.
	maxHandshakes = 5
	// handshakeRetryDelay separates two handshake attempts.
	handshakeRetryDelay = time.Second
	// maxResourceAttempts is how many GETs a resource fetch may send.
	maxResourceAttempts = 3
)

// RCAR is a background-check client: it attests with /auth and /attest and
// fetches resources with the session cookie. It is safe for concurrent use.
type RCAR struct {
	t        *transport
	ev       EvidenceProvider
	key      crypto.PrivateKey
	pub      protocol.TeePubKey
	initData *protocol.InitData
	sleep    func(context.Context, time.Duration) error
	now      func() time.Time

	mu        sync.Mutex // serialises handshakes and guards the fields below
	token     string
	tokenTime tokenTimes
	// generation counts successful handshakes, so that concurrent resource
	// requests refused with the same session re-attest only once.
	generation uint64
}

// NewRCAR returns a client for the KBS at baseURL (a trailing '/' is trimmed,
// a path prefix is kept) that collects evidence from ev.
func NewRCAR(baseURL string, ev EvidenceProvider, opts Options) (*RCAR, error) {
	if ev == nil {
		return nil, errors.New("rcar client: nil evidence provider")
	}
	t, err := newTransport(baseURL, opts)
	if err != nil {
		return nil, err
	}
	key := opts.TeeKey
	if key == nil {
		if key, err = jose.GenerateTeeKey(rand.Reader, ""); err != nil {
			return nil, fmt.Errorf("generate TEE key: %w", err)
		}
	}
	pub, err := jose.TeePubKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("TEE key: %w", err)
	}
	c := &RCAR{t: t, ev: ev, key: key, pub: pub, sleep: opts.Sleep, now: opts.Now}
	if len(opts.InitData) > 0 {
		c.initData = &protocol.InitData{Format: "toml", Body: string(opts.InitData)}
	}
	if c.sleep == nil {
		c.sleep = defaultSleep
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// TeeKey returns the client's TEE private key.
func (c *RCAR) TeeKey() crypto.PrivateKey { return c.key }

// Attest returns the cached attestation token while it is valid (exp and nbf
// checked against the clock), else runs the RCAR handshake, up to 5 times
// one second apart, and returns the new token.
func (c *RCAR) Attest(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.tokenTime.valid(c.now()) {
		return c.token, nil
	}
	var errs []error
	for attempt := 1; attempt <= maxHandshakes; attempt++ {
		if attempt > 1 {
			if err := c.sleep(ctx, handshakeRetryDelay); err != nil {
				return "", fmt.Errorf("rcar handshake: %w", errors.Join(append(errs, err)...))
			}
		}
		err := c.handshakeLocked(ctx)
		if err == nil {
			return c.token, nil
		}
		c.t.log.WarnContext(ctx, "RCAR handshake failed", "attempt", attempt, "error", err)
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("rcar handshake failed after %d attempts: %w", len(errs), errors.Join(errs...))
}

// generationNow returns the number of successful handshakes so far.
func (c *RCAR) generationNow() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// handshakeAfter runs one RCAR handshake unless one succeeded since
// generation seen was observed.
func (c *RCAR) handshakeAfter(ctx context.Context, seen uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generation != seen {
		return nil
	}
	return c.handshakeLocked(ctx)
}

func (c *RCAR) handshakeLocked(ctx context.Context) error {
	tee := c.ev.Tee()
	extra, err := marshalJSON(map[string]any{"supported-hash-algorithms": supportedHashAlgorithms})
	if err != nil {
		return err
	}
	reqBody, err := marshalJSON(protocol.Request{Version: protocol.Version, Tee: tee, ExtraParams: extra})
	if err != nil {
		return fmt.Errorf("encode auth request: %w", err)
	}
	status, body, err := c.t.do(ctx, http.MethodPost, "auth", "application/json", reqBody, "", maxResponse)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("auth: %w", newServerError(status, body))
	}
	challenge, err := parseChallenge(body)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	alg, err := SelectedHashAlgorithm(challenge.ExtraParams)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}

	rd := protocol.RuntimeData{Nonce: challenge.Nonce, TeePubKey: c.pub}
	devDigest, err := DeviceReportData(alg, rd)
	if err != nil {
		return err
	}
	additional, err := c.ev.AdditionalEvidence(ctx, devDigest)
	if err != nil {
		return fmt.Errorf("collect additional evidence: %w", err)
	}
	digest, err := PrimaryReportData(alg, rd, additional)
	if err != nil {
		return err
	}
	primary, err := c.ev.PrimaryEvidence(ctx, digest)
	if err != nil {
		return fmt.Errorf("collect %s evidence: %w", tee, err)
	}
	if !json.Valid(primary) {
		return fmt.Errorf("collect %s evidence: not valid JSON", tee)
	}
	att := protocol.Attestation{
		InitData:    c.initData,
		RuntimeData: rd,
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: primary, AdditionalEvidence: additional},
	}
	attBody, err := marshalJSON(att)
	if err != nil {
		return fmt.Errorf("encode attestation: %w", err)
	}
	c.t.log.DebugContext(ctx, "RCAR attest", "tee", tee, "hash", alg, "devices", additional != "")
	status, body, err = c.t.do(ctx, http.MethodPost, "attest", "application/json", attBody, "", maxResponse)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("attest: %w", newServerError(status, body))
	}
	var resp struct {
		Token *string `json:"token"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Token == nil {
		return fmt.Errorf("attest: response is not {\"token\": …}: %q", truncate(body))
	}
	times, err := parseTokenTimes(*resp.Token)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	c.token, c.tokenTime = *resp.Token, times
	c.generation++
	return nil
}

// parseChallenge parses the /auth answer, requiring nonce and extra-params
// as kbs-types does.
func parseChallenge(body []byte) (protocol.Challenge, error) {
	var raw struct {
		Nonce       *string         `json:"nonce"`
		ExtraParams json.RawMessage `json:"extra-params"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return protocol.Challenge{}, fmt.Errorf("parse challenge: %w", err)
	}
	if raw.Nonce == nil {
		return protocol.Challenge{}, errors.New("parse challenge: missing field `nonce`")
	}
	if raw.ExtraParams == nil {
		return protocol.Challenge{}, errors.New("parse challenge: missing field `extra-params`")
	}
	return protocol.Challenge{Nonce: *raw.Nonce, ExtraParams: raw.ExtraParams}, nil
}

// GetResource fetches and decrypts a resource. path is a bare resource path
// "repo/type/tag[?query]" (plugin "resource") or a resource URI
// "kbs[+plugin]:///seg/…[?query]" (see ParseResourceURI).
//
// As the Rust client does, the first GET carries only whatever session
// cookie the client holds; a 401 with an ErrorInformation body triggers one
// handshake and a retry, for at most 3 GETs. A 401 without ErrorInformation
// is a hard failure, 404 wraps ErrResourceNotFound and repeated 401s wrap
// ErrUnauthorized. Unlike the Rust client, no handshake follows the last 401.
func (c *RCAR) GetResource(ctx context.Context, path string) ([]byte, error) {
	uri, err := ParseResourceURI(path)
	if err != nil {
		return nil, err
	}
	var last error
	for attempt := 1; attempt <= maxResourceAttempts; attempt++ {
		seen := c.generationNow()
		status, body, err := c.t.do(ctx, http.MethodGet, uri.relative(), "", nil, "", maxResourceResponse)
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			return decryptResponse(c.key, body)
		case http.StatusUnauthorized:
			serr := newServerError(status, body)
			if !serr.HasErrorInformation() {
				return nil, fmt.Errorf("get resource: 401 without ErrorInformation body: %w", serr)
			}
			last = serr
			if attempt == maxResourceAttempts {
				break
			}
			c.t.log.DebugContext(ctx, "resource request unauthorized, re-attesting", "attempt", attempt, "type", serr.Info.Type)
			if err := c.handshakeAfter(ctx, seen); err != nil {
				return nil, fmt.Errorf("get resource: rcar handshake: %w", err)
			}
		default:
			return nil, resourceStatusError(status, body)
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrUnauthorized, last)
}

// resourceStatusError maps a non-200, non-401 resource answer to an error.
func resourceStatusError(status int, body []byte) error {
	serr := newServerError(status, body)
	if status == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrResourceNotFound, serr)
	}
	return fmt.Errorf("get resource: KBS internal error: %w", serr)
}

// decryptResponse parses a JWE resource response and decrypts it with key.
func decryptResponse(key crypto.PrivateKey, body []byte) ([]byte, error) {
	var resp protocol.Response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("get resource: response is not a JWE JSON object: %w", err)
	}
	plain, err := jose.Decrypt(key, &resp)
	if err != nil {
		return nil, fmt.Errorf("get resource: decrypt response: %w", err)
	}
	return plain, nil
}

// truncate shortens a body for error messages.
func truncate(b []byte) string {
	const n = 256
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
