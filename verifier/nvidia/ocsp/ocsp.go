// Package ocsp is an OCSP (RFC 6960) client for NVIDIA attestation
// certificate chains, written with encoding/asn1 and crypto/x509 only.
//
// It builds requests with a CertID hash of choice (SHA-384 as nvtrust does,
// SHA-256, or SHA-1 as NVAT does) and a 32-byte nonce extension, POSTs them
// to the responder, and accepts an answer only when it is a
// BasicOCSPResponse signed by the certificate's issuer or by a delegated
// responder certificate (EKU OCSPSigning) issued by that issuer, echoes the
// nonce in responseExtensions (where NVIDIA's responder puts it), matches the
// CertID, and is current (thisUpdate/nextUpdate) at the injected clock.
// Definitive answers are cached until nextUpdate.
package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultResponderURL is NVIDIA's OCSP responder (nvtrust / NVAT default).
const DefaultResponderURL = "https://ocsp.ndis.nvidia.com"

// Certificate status strings (NVIDIA's x-nvidia-cert-ocsp-status values).
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
	StatusUnknown = "unknown"
)

// Sentinel errors; every error returned wraps one of them.
var (
	// ErrChain: the chain passed in is too short or not linked by names.
	ErrChain = errors.New("ocsp: invalid certificate chain")
	// ErrUnreachable: the responder could not be reached or answered with
	// an HTTP error.
	ErrUnreachable = errors.New("ocsp: responder unreachable")
	// ErrResponseStatus: the OCSPResponse status is not "successful".
	ErrResponseStatus = errors.New("ocsp: unsuccessful response status")
	// ErrMalformedResponse: the response is not a valid BasicOCSPResponse.
	ErrMalformedResponse = errors.New("ocsp: malformed response")
	// ErrBadSignature: the response signature does not verify.
	ErrBadSignature = errors.New("ocsp: invalid response signature")
	// ErrUnauthorizedResponder: the response is signed by neither the
	// issuer nor a delegated OCSP signer issued by it.
	ErrUnauthorizedResponder = errors.New("ocsp: unauthorized responder")
	// ErrNonceMismatch: the response does not echo the request nonce.
	ErrNonceMismatch = errors.New("ocsp: nonce mismatch")
	// ErrStale: thisUpdate is in the future or nextUpdate has passed.
	ErrStale = errors.New("ocsp: response not current")
	// ErrCertIDMismatch: the response has no SingleResponse for the
	// requested certificate.
	ErrCertIDMismatch = errors.New("ocsp: response does not cover the certificate")
	// ErrUnknownStatus: the responder does not know the certificate.
	ErrUnknownStatus = errors.New("ocsp: certificate status unknown")
)

// Options configures a Checker.
type Options struct {
	// ResponderURL receives the POSTed requests; empty means
	// DefaultResponderURL. (NVIDIA's certificates name
	// http://ocsp.ndis.nvidia.com in their AIA; nvtrust and NVAT use the
	// HTTPS endpoint.)
	ResponderURL string
	// ServiceKey, when set, is sent as "Authorization: Bearer <key>".
	ServiceKey string
	// HTTPClient performs requests; nil means a client with a 15 s timeout.
	HTTPClient *http.Client
	// Hash is the CertID hash: crypto.SHA384 (default, as nvtrust),
	// crypto.SHA256 or crypto.SHA1 (as NVAT).
	Hash crypto.Hash
	// Now is the clock for freshness checks and the cache; nil means time.Now.
	Now func() time.Time
	// Rand supplies the 32-byte request nonces; nil means crypto/rand.
	Rand io.Reader
	// Lenient, when true, reports certificates whose status cannot be
	// established (unreachable responder, invalid or unknown answer) as
	// StatusUnknown with the reason and no error. The default (strict)
	// returns an error for them.
	Lenient bool
	// ClockSkew is the tolerance applied to thisUpdate and nextUpdate; 0
	// means 5 minutes.
	ClockSkew time.Duration
	// MaxResponseBytes bounds a response body; 0 means 64 KiB.
	MaxResponseBytes int64
	// DisableCache turns off the response cache.
	DisableCache bool
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// CertResult is the outcome for one certificate.
type CertResult struct {
	Subject          string    // subject common name
	Serial           *big.Int  // certificate serial number
	Status           string    // StatusGood, StatusRevoked or StatusUnknown
	RevocationReason string    // e.g. "certificate_hold" (revoked only; "" when absent)
	RevokedAt        time.Time // revoked only
	ThisUpdate       time.Time
	NextUpdate       time.Time // zero when the responder gave none
	NonceMatched     bool      // the response echoed the request nonce
	ResponseValid    bool      // signature, responder authorisation, CertID and freshness all valid
	Cached           bool      // answered from the cache
	Err              error     // why Status is unknown, when it is
}

type cacheEntry struct {
	res     CertResult
	expires time.Time
}

// Checker checks certificate chains with OCSP. It is safe for concurrent use.
type Checker struct {
	url     string
	key     string
	http    *http.Client
	hash    crypto.Hash
	now     func() time.Time
	rand    io.Reader
	lenient bool
	skew    time.Duration
	max     int64
	noCache bool
	log     *slog.Logger

	mu    sync.Mutex
	cache map[string]cacheEntry
}

// New returns a Checker.
func New(opts Options) (*Checker, error) {
	c := &Checker{
		url: opts.ResponderURL, key: opts.ServiceKey, http: opts.HTTPClient, hash: opts.Hash, now: opts.Now,
		rand: opts.Rand, lenient: opts.Lenient, skew: opts.ClockSkew, max: opts.MaxResponseBytes,
		noCache: opts.DisableCache, log: opts.Logger, cache: map[string]cacheEntry{},
	}
	if c.url == "" {
		c.url = DefaultResponderURL
	}
	if !strings.HasPrefix(c.url, "http://") && !strings.HasPrefix(c.url, "https://") {
		return nil, fmt.Errorf("ocsp: responder URL %q is not http(s)", c.url)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 15 * time.Second}
	}
	if c.hash == 0 {
		c.hash = crypto.SHA384
	}
	if _, ok := hashOIDs[c.hash]; !ok || c.hash == crypto.SHA512 {
		return nil, fmt.Errorf("ocsp: unsupported CertID hash %v (use SHA384, SHA256 or SHA1)", c.hash)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.skew == 0 {
		c.skew = 5 * time.Minute
	}
	if c.max <= 0 {
		c.max = 64 << 10
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// CheckChain checks every certificate of chain (leaf first) except the last
// one (the root) against its issuer chain[i+1], and summarises: "revoked" if
// any certificate is revoked, otherwise "unknown" if any status could not be
// established, otherwise "good". detail names the certificates concerned
// and the reasons. In strict mode (the default) an unestablished status
// returns an error; revocation is a definitive answer, not an error. To skip
// a certificate NVIDIA's responder does not serve (the device FMC leaf),
// pass chain[1:].
func (c *Checker) CheckChain(ctx context.Context, chain []*x509.Certificate) (status, detail string, err error) {
	results, err := c.Check(ctx, chain)
	if err != nil {
		return StatusUnknown, err.Error(), err
	}
	status, detail = Summarize(results)
	return status, detail, nil
}

// Summarize folds per-certificate results into CheckChain's status and
// detail. It is exported so callers that need per-certificate claims can
// reuse Check's output.
func Summarize(results []CertResult) (status, detail string) {
	var revoked, unknown []string
	for _, r := range results {
		switch r.Status {
		case StatusRevoked:
			d := fmt.Sprintf("%q revoked", r.Subject)
			if r.RevocationReason != "" {
				d += " (" + r.RevocationReason + ")"
			}
			revoked = append(revoked, d)
		case StatusUnknown:
			d := fmt.Sprintf("%q unknown", r.Subject)
			if r.Err != nil {
				d += ": " + r.Err.Error()
			}
			unknown = append(unknown, d)
		}
	}
	switch {
	case len(revoked) > 0:
		return StatusRevoked, strings.Join(append(revoked, unknown...), "; ")
	case len(unknown) > 0:
		return StatusUnknown, strings.Join(unknown, "; ")
	}
	return StatusGood, fmt.Sprintf("%d certificates good", len(results))
}

// Check returns the per-certificate results for chain[0..n-2]. In strict
// mode the first certificate whose status cannot be established stops the
// check and its error is returned; in lenient mode such certificates get
// StatusUnknown with Err set and the error is nil.
func (c *Checker) Check(ctx context.Context, chain []*x509.Certificate) ([]CertResult, error) {
	if len(chain) < 2 {
		return nil, fmt.Errorf("%w: %d certificates, need a certificate and its issuer", ErrChain, len(chain))
	}
	for i := 0; i+1 < len(chain); i++ {
		if chain[i] == nil || chain[i+1] == nil {
			return nil, fmt.Errorf("%w: nil certificate", ErrChain)
		}
		if !bytes.Equal(chain[i].RawIssuer, chain[i+1].RawSubject) {
			return nil, fmt.Errorf("%w: certificate %d (%q) is not issued by %q", ErrChain, i, chain[i].Subject.CommonName, chain[i+1].Subject.CommonName)
		}
	}
	results := make([]CertResult, 0, len(chain)-1)
	for i := 0; i+1 < len(chain); i++ {
		r := c.checkOne(ctx, chain[i], chain[i+1])
		if r.Err != nil && !c.lenient {
			return results, fmt.Errorf("certificate %q: %w", r.Subject, r.Err)
		}
		results = append(results, r)
	}
	return results, nil
}

// CheckCertificate checks one certificate against its issuer.
func (c *Checker) CheckCertificate(ctx context.Context, cert, issuer *x509.Certificate) (CertResult, error) {
	rs, err := c.Check(ctx, []*x509.Certificate{cert, issuer})
	if err != nil {
		return CertResult{Subject: cert.Subject.CommonName, Serial: cert.SerialNumber, Status: StatusUnknown, Err: err}, err
	}
	return rs[0], nil
}

func (c *Checker) checkOne(ctx context.Context, cert, issuer *x509.Certificate) CertResult {
	res := CertResult{Subject: cert.Subject.CommonName, Serial: cert.SerialNumber, Status: StatusUnknown}
	id, err := newCertID(cert, issuer, c.hash)
	if err != nil {
		res.Err = fmt.Errorf("%w: %v", ErrChain, err)
		return res
	}
	now := c.now()
	key := id.key()
	if !c.noCache {
		c.mu.Lock()
		e, ok := c.cache[key]
		c.mu.Unlock()
		if ok && now.Before(e.expires) {
			r := e.res
			r.Cached = true
			return r
		}
	}
	nonce := make([]byte, 32)
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		res.Err = fmt.Errorf("%w: nonce: %v", ErrUnreachable, err)
		return res
	}
	reqDER, nonceValue, err := marshalRequest(id, nonce)
	if err != nil {
		res.Err = fmt.Errorf("%w: build request: %v", ErrUnreachable, err)
		return res
	}
	body, err := c.post(ctx, reqDER)
	if err != nil {
		res.Err = err
		return res
	}
	r, expires, err := c.evaluate(body, id, issuer, nonce, nonceValue, now)
	r.Subject, r.Serial = res.Subject, res.Serial
	if err != nil {
		r.Status, r.Err = StatusUnknown, err
		return r
	}
	if r.Status == StatusUnknown {
		r.Err = fmt.Errorf("%w: responder does not know serial %s", ErrUnknownStatus, cert.SerialNumber)
		return r
	}
	if !c.noCache && !expires.IsZero() {
		c.mu.Lock()
		c.cache[key] = cacheEntry{res: r, expires: expires}
		c.mu.Unlock()
	}
	c.log.Debug("ocsp status", "subject", r.Subject, "status", r.Status, "reason", r.RevocationReason)
	return r
}

func (c *Checker) post(ctx context.Context, der []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(der))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: POST %s: %w", ErrUnreachable, c.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %w", ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: POST %s: HTTP %d", ErrUnreachable, c.url, resp.StatusCode)
	}
	if int64(len(body)) > c.max {
		return nil, fmt.Errorf("%w: response exceeds %d bytes", ErrMalformedResponse, c.max)
	}
	return body, nil
}

// evaluate authenticates a response for id and returns the result and the
// cache expiry (nextUpdate, zero when absent).
func (c *Checker) evaluate(der []byte, id certID, issuer *x509.Certificate, nonce, nonceValue []byte, now time.Time) (CertResult, time.Time, error) {
	var res CertResult
	p, err := parseResponse(der)
	if err != nil {
		return res, time.Time{}, err
	}
	if err := c.verifySigner(p, issuer, now); err != nil {
		return res, time.Time{}, err
	}
	// Nonce echo in responseExtensions (RFC 8954); the raw nonce is also
	// accepted for responders that omit the OCTET STRING wrapper.
	for _, e := range p.extensions {
		if e.Id.Equal(oidNonce) && (bytes.Equal(e.Value, nonceValue) || bytes.Equal(e.Value, nonce)) {
			res.NonceMatched = true
		}
	}
	if !res.NonceMatched {
		return res, time.Time{}, fmt.Errorf("%w: request nonce not echoed in responseExtensions", ErrNonceMismatch)
	}
	var single *singleResponse
	for i := range p.data.Responses {
		if p.data.Responses[i].CertID.equal(id) {
			single = &p.data.Responses[i]
			break
		}
	}
	if single == nil {
		return res, time.Time{}, fmt.Errorf("%w: serial %s", ErrCertIDMismatch, id.SerialNumber)
	}
	res.ThisUpdate, res.NextUpdate = single.ThisUpdate, single.NextUpdate
	if single.ThisUpdate.After(now.Add(c.skew)) {
		return res, time.Time{}, fmt.Errorf("%w: thisUpdate %s is in the future", ErrStale, single.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !single.NextUpdate.IsZero() && now.After(single.NextUpdate.Add(c.skew)) {
		return res, time.Time{}, fmt.Errorf("%w: nextUpdate %s has passed", ErrStale, single.NextUpdate.UTC().Format(time.RFC3339))
	}
	status, revokedAt, reason, err := certStatus(single.CertStatus)
	if err != nil {
		return res, time.Time{}, err
	}
	res.Status, res.RevokedAt, res.ResponseValid = status, revokedAt, true
	if status == StatusRevoked {
		res.RevocationReason = ReasonString(reason)
	}
	return res, single.NextUpdate, nil
}

// verifySigner checks that the response is signed by the issuer or by a
// delegated responder certificate issued by it.
func (c *Checker) verifySigner(p *parsedResponse, issuer *x509.Certificate, now time.Time) error {
	alg, err := signatureAlgorithm(p.sigAlg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var signer *x509.Certificate
	switch {
	case responderMatches(p.responder, issuer):
		signer = issuer
	default:
		for _, cand := range p.certs {
			if responderMatches(p.responder, cand) {
				signer = cand
				break
			}
		}
		if signer == nil {
			return fmt.Errorf("%w: ResponderID names neither the issuer nor an included certificate", ErrUnauthorizedResponder)
		}
		if err := signer.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("%w: responder %q is not issued by %q: %v", ErrUnauthorizedResponder, signer.Subject.CommonName, issuer.Subject.CommonName, err)
		}
		hasEKU := false
		for _, eku := range signer.ExtKeyUsage {
			if eku == x509.ExtKeyUsageOCSPSigning {
				hasEKU = true
			}
		}
		if !hasEKU {
			return fmt.Errorf("%w: responder %q lacks the OCSPSigning EKU", ErrUnauthorizedResponder, signer.Subject.CommonName)
		}
		if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
			return fmt.Errorf("%w: responder certificate %q not valid at %s", ErrUnauthorizedResponder, signer.Subject.CommonName, now.UTC().Format(time.RFC3339))
		}
	}
	if err := signer.CheckSignature(alg, p.tbs, p.signature); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// ReasonString maps an RFC 5280 CRLReason code to NVIDIA's snake_case
// revocation reason ("" for an absent reason).
func ReasonString(code int) string {
	switch code {
	case -1:
		return ""
	case 0:
		return "unspecified"
	case 1:
		return "key_compromise"
	case 2:
		return "ca_compromise"
	case 3:
		return "affiliation_changed"
	case 4:
		return "superseded"
	case 5:
		return "cessation_of_operation"
	case 6:
		return "certificate_hold"
	case 8:
		return "remove_from_crl"
	case 9:
		return "privilege_withdrawn"
	case 10:
		return "aa_compromise"
	}
	return fmt.Sprintf("reason_%d", code)
}
