// Package tokenverify verifies attestation tokens (JWTs such as the EAR
// token of the builtin Attestation Service) presented to the KBS, following
// the `[attestation_token]` rules of Trustee:
//
//   - a header `jwk` is used directly when InsecureHeaderJWK is set;
//     otherwise it must carry an x5c chain whose leaf holds the same key and
//     which chains to a certificate in TrustedCertsPaths;
//   - a header without `jwk` names its key by `kid` in TrustedJWKSets;
//   - the JWK's `alg` drives verification and must equal the header `alg`;
//   - `exp` is required (60 s leeway); `aud` is not checked.
//
// Sigil is stricter than Trustee in these deliberate ways:
//
//   - time claims: a token whose `nbf` or `iat` lies more than the leeway
//     in the future is refused, and so is one valid for longer than
//     Config.MaxTokenLifetime (plus the leeway), measured as exp - iat and
//     as exp - now (Trustee only checks `exp`, so a token minted with a
//     far-future `exp` would be honoured forever);
//   - x5c leaf: the certificate that endorses the signing key must be fit
//     for signing tokens (see checkSignerCert): a KeyUsage extension must
//     include digitalSignature; an ExtendedKeyUsage extension must not
//     confine the key to TLS (serverAuth, clientAuth), OCSP signing or
//     time stamping unless it also lists anyExtendedKeyUsage; and a CA
//     certificate may sign tokens directly only when it is itself a
//     configured trust anchor (a pinned self-signed signer);
//   - the JOSE header, the JWK and the payload are parsed as strict JSON
//     (see package jws): duplicate members, case-folded member names,
//     invalid UTF-8 and lone surrogate escapes make the token malformed.
package tokenverify

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws"
)

// Config is the `[attestation_token]` section of the KBS config.
type Config struct {
	// TrustedJWKSets are JWK set sources (file://, https:// or a path).
	TrustedJWKSets []string
	// TrustedCertsPaths are PEM bundles of trust anchors for x5c chains.
	TrustedCertsPaths []string
	// ExtraTeeKeyPaths are JSON pointers tried first by TeePubKey.
	ExtraTeeKeyPaths []string
	// InsecureHeaderJWK trusts a key in the token header without endorsement.
	InsecureHeaderJWK bool
	// MaxTokenLifetime is the longest validity accepted: a token whose
	// exp - iat, or exp - now, exceeds MaxTokenLifetime plus the leeway
	// (jws.DefaultLeeway) is rejected. Zero means
	// DefaultMaxTokenLifetime; negative values are a configuration error.
	// With the builtin Attestation Service this should be
	// `attestation_token_broker.duration_min`; tokens from another issuer
	// (a remote AS, Intel Trust Authority) need that issuer's lifetime.
	// Not a Trustee setting: Trustee does not bound `exp`.
	MaxTokenLifetime time.Duration
}

// DefaultMaxTokenLifetime is the MaxTokenLifetime used when the field is
// zero: Trustee's default token duration (`duration_min = 5`).
const DefaultMaxTokenLifetime = 5 * time.Minute

// Options carries the injected dependencies.
type Options struct {
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	// JWKSRefreshInterval rate-limits JWK set refetches on unknown kids
	// (default 30 s).
	JWKSRefreshInterval time.Duration
	// HeaderKeyCacheSize bounds the cache of verified header JWKs
	// (default 64; negative disables the cache).
	HeaderKeyCacheSize int
}

// Errors returned by Verify (wrapped; match with errors.Is). Errors from
// package jws (jws.ErrInvalidSignature, jws.ErrExpired, …) are wrapped too.
var (
	ErrNoTrustAnchor   = errors.New("no trusted JWK set, trusted certificate or insecure_header_jwk configured")
	ErrUntrustedKey    = errors.New("token key is not endorsed by a trust anchor")
	ErrMissingKeyAlg   = errors.New("JWK has no `alg`")
	ErrAlgMismatch     = errors.New("token `alg` differs from the JWK `alg`")
	ErrNoKeyIdentifier = errors.New("token header has neither `jwk` nor `kid`")
	// ErrSignerCert is wrapped (together with ErrUntrustedKey) when the x5c
	// leaf certificate is not fit to sign tokens.
	ErrSignerCert = errors.New("x5c leaf certificate is not allowed to sign tokens")
)

// Verifier verifies attestation tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	roots   *x509.CertPool
	anchors map[string]struct{} // DER of the trust anchors
	keySets []*jws.KeySet
	times   jws.TimeRules

	cacheMax int
	cacheMu  sync.RWMutex
	cache    map[string]*headerKey
}

// headerKey is a verified header JWK. For x5c-endorsed keys the chain is
// only valid within [notBefore, notAfter].
type headerKey struct {
	key       crypto.PublicKey
	alg       string
	bounded   bool
	notBefore time.Time
	notAfter  time.Time
}

// New loads the trust anchors: PEM bundles and JWK sets (fetched now; a
// failure is a startup error). At least one trust anchor or
// InsecureHeaderJWK is required.
func New(ctx context.Context, cfg Config, opts Options) (*Verifier, error) {
	if len(cfg.TrustedJWKSets) == 0 && len(cfg.TrustedCertsPaths) == 0 && !cfg.InsecureHeaderJWK {
		return nil, fmt.Errorf("attestation token verifier: %w", ErrNoTrustAnchor)
	}
	for _, p := range cfg.ExtraTeeKeyPaths {
		if _, err := splitPointer(p); err != nil {
			return nil, fmt.Errorf("extra_teekey_paths: %w", err)
		}
	}
	switch {
	case cfg.MaxTokenLifetime == 0:
		cfg.MaxTokenLifetime = DefaultMaxTokenLifetime
	case cfg.MaxTokenLifetime < 0:
		return nil, fmt.Errorf("attestation token verifier: negative maximum token lifetime %s", cfg.MaxTokenLifetime)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	v := &Verifier{
		cfg: cfg, now: opts.Now, log: opts.Logger,
		roots: x509.NewCertPool(), anchors: make(map[string]struct{}),
		times: jws.TimeRules{Leeway: jws.DefaultLeeway, MaxLifetime: cfg.MaxTokenLifetime},
	}
	switch {
	case opts.HeaderKeyCacheSize == 0:
		v.cacheMax = 64
	case opts.HeaderKeyCacheSize > 0:
		v.cacheMax = opts.HeaderKeyCacheSize
	}
	if v.cacheMax > 0 {
		v.cache = make(map[string]*headerKey, v.cacheMax)
	}
	for _, path := range cfg.TrustedCertsPaths {
		certs, err := loadCerts(path)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			v.roots.AddCert(c)
			v.anchors[string(c.Raw)] = struct{}{}
		}
	}
	for _, uri := range cfg.TrustedJWKSets {
		ks, err := jws.NewKeySet(ctx, uri, jws.KeySetOptions{
			HTTPClient:         opts.HTTPClient,
			Now:                opts.Now,
			Logger:             opts.Logger,
			MinRefreshInterval: opts.JWKSRefreshInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("trusted_jwk_sets: %w", err)
		}
		v.keySets = append(v.keySets, ks)
	}
	return v, nil
}

func loadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trusted_certs_paths: %w", err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trusted_certs_paths: %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("trusted_certs_paths: no certificates found in %s", path)
	}
	return certs, nil
}

// Verify checks the token's signature, key endorsement and time claims
// (`exp`, `nbf`, `iat`, lifetime; see jws.CheckTimes), and returns its
// claims (JSON numbers as float64).
func (v *Verifier) Verify(ctx context.Context, token string) (map[string]any, error) {
	tok, err := jws.Parse(token)
	if err != nil {
		return nil, err
	}
	var key crypto.PublicKey
	var alg string
	if len(tok.Header.JWK) > 0 {
		hk, err := v.headerJWK(tok.Header.JWK)
		if err != nil {
			return nil, err
		}
		key, alg = hk.key, hk.alg
	} else {
		if tok.Header.Kid == "" {
			return nil, ErrNoKeyIdentifier
		}
		jwk, err := v.lookupKid(ctx, tok.Header.Kid)
		if err != nil {
			return nil, err
		}
		if jwk.Alg == "" {
			return nil, fmt.Errorf("kid %q: %w", tok.Header.Kid, ErrMissingKeyAlg)
		}
		key, alg = jwk.Key, jwk.Alg
	}
	if tok.Header.Alg != alg {
		return nil, fmt.Errorf("%w: %q vs %q", ErrAlgMismatch, tok.Header.Alg, alg)
	}
	if err := tok.Verify(key); err != nil {
		return nil, err
	}
	claims, err := tok.Claims()
	if err != nil {
		return nil, err
	}
	if err := jws.CheckTimes(claims, v.now(), v.times); err != nil {
		return nil, err
	}
	return claims, nil
}

func (v *Verifier) lookupKid(ctx context.Context, kid string) (*jws.JWK, error) {
	if len(v.keySets) == 0 {
		return nil, fmt.Errorf("%w: token names kid %q but no trusted JWK set is configured", ErrUntrustedKey, kid)
	}
	var errs []error
	for _, ks := range v.keySets {
		k, err := ks.Lookup(ctx, kid)
		if err == nil {
			return k, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrUntrustedKey, errors.Join(errs...))
}

// headerJWK returns the verification key of a header JWK, from the cache
// when these exact JWK bytes were verified before.
func (v *Verifier) headerJWK(raw []byte) (*headerKey, error) {
	now := v.now()
	if v.cache != nil {
		v.cacheMu.RLock()
		hk := v.cache[string(raw)]
		v.cacheMu.RUnlock()
		if hk != nil && (!hk.bounded || (!now.Before(hk.notBefore) && !now.After(hk.notAfter))) {
			return hk, nil
		}
	}
	hk, err := v.endorse(raw, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cacheMu.Lock()
		if len(v.cache) >= v.cacheMax {
			for k := range v.cache { // evict an arbitrary entry
				delete(v.cache, k)
				break
			}
		}
		v.cache[string(raw)] = hk
		v.cacheMu.Unlock()
	}
	return hk, nil
}

func (v *Verifier) endorse(raw []byte, now time.Time) (*headerKey, error) {
	jwk, err := jws.ParseJWK(raw)
	if err != nil {
		return nil, fmt.Errorf("header jwk: %w", err)
	}
	if jwk.Alg == "" {
		return nil, fmt.Errorf("header jwk: %w", ErrMissingKeyAlg)
	}
	if err := jws.CheckAlgKey(jwk.Alg, jwk.Key); err != nil {
		return nil, fmt.Errorf("header jwk: %w", err)
	}
	if v.cfg.InsecureHeaderJWK {
		return &headerKey{key: jwk.Key, alg: jwk.Alg}, nil
	}
	if len(v.anchors) == 0 {
		return nil, fmt.Errorf("%w: header jwk present but no trusted certificate is configured", ErrUntrustedKey)
	}
	chain, err := v.verifyX5c(jwk, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrustedKey, err)
	}
	hk := &headerKey{key: jwk.Key, alg: jwk.Alg, bounded: true}
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(hk.notBefore) {
			hk.notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(hk.notAfter) {
			hk.notAfter = c.NotAfter
		}
	}
	return hk, nil
}

// verifyX5c checks that the JWK is RSA or EC P-256, that its x5c leaf holds
// the same key, and that the chain verifies to a trusted certificate at now.
func (v *Verifier) verifyX5c(jwk *jws.JWK, now time.Time) ([]*x509.Certificate, error) {
	switch jwk.Kty {
	case "RSA":
	case "EC":
		if jwk.Alg != "ES256" {
			return nil, errors.New("only EC P-256 or RSA keys can be endorsed by x5c")
		}
	default:
		return nil, errors.New("only EC P-256 or RSA keys can be endorsed by x5c")
	}
	if len(jwk.X5c) == 0 {
		return nil, errors.New("header jwk has no x5c")
	}
	certs := make([]*x509.Certificate, len(jwk.X5c))
	for i, s := range jwk.X5c {
		der, err := jws.DecodeX5c(s)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("x5c[%d]: %w", i, err)
		}
	}
	if !jws.KeysEqual(jwk.Key, certs[0].PublicKey) {
		return nil, errors.New("jwk does not match the x5c leaf certificate")
	}
	_, pinned := v.anchors[string(certs[0].Raw)]
	if err := checkSignerCert(certs[0], pinned); err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("x5c chain: %w", err)
	}
	return chains[0], nil
}

// Object identifiers of the X.509 extensions checkSignerCert looks at.
var (
	oidKeyUsage    = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// dedicatedEKU lists extended key usages that confine a key to another
// protocol. A leaf whose EKUs are all among these (without
// anyExtendedKeyUsage) is, for example, a TLS server certificate, and its
// key must not be accepted as an attestation-token signer.
var dedicatedEKU = map[x509.ExtKeyUsage]bool{
	x509.ExtKeyUsageServerAuth:   true,
	x509.ExtKeyUsageClientAuth:   true,
	x509.ExtKeyUsageOCSPSigning:  true,
	x509.ExtKeyUsageTimeStamping: true,
}

// checkSignerCert decides whether the x5c leaf may endorse a token signing
// key. pinned tells whether the leaf is itself a configured trust anchor.
//
//   - KeyUsage: when the extension is present it must assert
//     digitalSignature (RFC 5280 §4.2.1.3: a key limited to, say,
//     keyCertSign or keyEncipherment must not sign JWS).
//   - ExtendedKeyUsage: when present, it must list anyExtendedKeyUsage or
//     at least one purpose outside serverAuth, clientAuth, OCSPSigning and
//     timeStamping. There is no registered "token signing" purpose, so
//     codeSigning, documentSigning or a private OID are accepted; a
//     certificate issued only for TLS (or OCSP, or time stamping) is not,
//     since that would let a web-server key mint attestation tokens.
//   - CA certificates (basicConstraints cA=TRUE) are refused as signers
//     unless pinned: a signing key should sit in a dedicated end-entity
//     certificate, and an intermediate CA presented as the leaf usually
//     means a CA key is being misused (or a chain was mis-assembled). A
//     self-signed signer certificate that the operator lists in
//     trusted_certs_paths is accepted even if it is marked as a CA, since
//     the operator pinned that exact certificate.
func checkSignerCert(leaf *x509.Certificate, pinned bool) error {
	var hasKU, hasEKU bool
	for _, ext := range leaf.Extensions {
		switch {
		case ext.Id.Equal(oidKeyUsage):
			hasKU = true
		case ext.Id.Equal(oidExtKeyUsage):
			hasEKU = true
		}
	}
	if hasKU && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: its key usage lacks digitalSignature", ErrSignerCert)
	}
	if hasEKU && !signingEKU(leaf) {
		return fmt.Errorf("%w: its extended key usage %s does not allow token signing", ErrSignerCert, ekuNames(leaf))
	}
	if leaf.BasicConstraintsValid && leaf.IsCA && !pinned {
		return fmt.Errorf("%w: it is a CA certificate (use an end-entity certificate, or pin it in trusted_certs_paths)", ErrSignerCert)
	}
	return nil
}

func signingEKU(c *x509.Certificate) bool {
	if len(c.UnknownExtKeyUsage) > 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || !dedicatedEKU[u] {
			return true
		}
	}
	return false
}

func ekuNames(c *x509.Certificate) string {
	names := make([]string, 0, len(c.ExtKeyUsage))
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			names = append(names, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			names = append(names, "clientAuth")
		case x509.ExtKeyUsageOCSPSigning:
			names = append(names, "OCSPSigning")
		case x509.ExtKeyUsageTimeStamping:
			names = append(names, "timeStamping")
		default:
			names = append(names, fmt.Sprintf("EKU(%d)", u))
		}
	}
	return "[" + strings.Join(names, ", ") + "]"
}
