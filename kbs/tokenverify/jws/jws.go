// Package jws verifies compact JWS/JWT tokens with the algorithms the KBS
// accepts (ES256/384/512, RS256/384/512, PS256/384/512, EdDSA), parses public
// JWKs and PEM keys, and fetches and caches JWK sets. It is shared by the
// attestation-token verifier and the admin authorizer.
//
// HMAC algorithms and "none" are never accepted, and the algorithm named by a
// token must match the type (and curve) of the key that verifies it.
//
// The JOSE header, the payload and JWKs are decoded strictly (see package
// internal/strictjson): a duplicate member, a member name that differs only
// in case from a known one ("Alg", "X5C"), invalid UTF-8, a lone surrogate
// escape, trailing data or nesting deeper than strictjson.MaxDepth makes the
// token malformed. encoding/json alone would keep the last of two duplicate
// members and fold case, so two parsers could read different claims out of
// the same signed bytes.
package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// Errors reported by this package; match them with errors.Is.
var (
	ErrMalformed          = errors.New("malformed JWS")
	ErrUnsupportedAlg     = errors.New("unsupported JWS algorithm")
	ErrKeyMismatch        = errors.New("JWS algorithm does not match the key")
	ErrInvalidSignature   = errors.New("invalid JWS signature")
	ErrExpired            = errors.New("token expired")
	ErrMissingExp         = errors.New("token has no valid `exp` claim")
	ErrNotYetValid        = errors.New("token not valid yet (`nbf` in the future)")
	ErrIssuedInFuture     = errors.New("token issued in the future (`iat`)")
	ErrLifetimeTooLong    = errors.New("token lifetime exceeds the allowed maximum")
	ErrInvalidTimeClaim   = errors.New("token `iat` or `nbf` claim is not a number")
	ErrUnsupportedKeyType = errors.New("unsupported key type")
)

// MinRSABits is the smallest RSA modulus accepted for signature verification.
const MinRSABits = 2048

// MaxRSABits is the largest: verification time grows with the square of the
// modulus, and a key in a token header must not cost seconds (Go's x509
// parser has the same bound for certificates).
const MaxRSABits = 8192

// DefaultLeeway is the clock skew tolerated when checking `exp`, `nbf` and
// `iat`.
const DefaultLeeway = 60 * time.Second

// Header holds the JOSE header members the KBS looks at.
type Header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid,omitempty"`
	Typ  string          `json:"typ,omitempty"`
	JWK  json.RawMessage `json:"jwk,omitempty"`
	Crit []string        `json:"crit,omitempty"`
}

// Token is a parsed, not yet verified, compact JWS.
type Token struct {
	Header Header
	// Payload is the decoded payload bytes.
	Payload []byte
	// Signature is the decoded signature.
	Signature []byte
	// SigningInput is "<b64 header>.<b64 payload>", a substring of the token.
	SigningInput string
}

// Parse splits and decodes a compact JWS. It does not verify anything.
func Parse(token string) (*Token, error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, fmt.Errorf("%w: expected three parts", ErrMalformed)
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		return nil, fmt.Errorf("%w: expected three parts", ErrMalformed)
	}
	enc := base64.RawURLEncoding
	// One backing array for the three decoded parts.
	buf := make([]byte, enc.DecodedLen(len(h))+enc.DecodedLen(len(p))+enc.DecodedLen(len(s)))
	hn, err := enc.Decode(buf, []byte(h))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	hdr := buf[:hn:hn]
	rest2 := buf[hn:]
	pn, err := enc.Decode(rest2, []byte(p))
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	payload := rest2[:pn:pn]
	rest3 := rest2[pn:]
	sn, err := enc.Decode(rest3, []byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	t := &Token{Payload: payload, Signature: rest3[:sn:sn], SigningInput: token[:len(h)+1+len(p)]}
	if err := strictjson.Unmarshal(hdr, &t.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if t.Header.Alg == "" {
		return nil, fmt.Errorf("%w: header has no `alg`", ErrMalformed)
	}
	if len(t.Header.Crit) > 0 {
		return nil, fmt.Errorf("%w: unsupported critical header parameters %q", ErrMalformed, t.Header.Crit)
	}
	if string(t.Header.JWK) == "null" {
		t.Header.JWK = nil
	}
	return t, nil
}

// hashFor returns the digest algorithm of a supported alg.
func hashFor(alg string) (crypto.Hash, error) {
	switch alg {
	case "ES256", "RS256", "PS256":
		return crypto.SHA256, nil
	case "ES384", "RS384", "PS384":
		return crypto.SHA384, nil
	case "ES512", "RS512", "PS512":
		return crypto.SHA512, nil
	case "EdDSA", "Ed25519":
		return 0, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
}

// CheckAlgKey reports whether alg is supported and fits key: ES256/384/512
// need an ECDSA key on P-256/P-384/P-521, RS*/PS* an RSA key of at least
// MinRSABits, EdDSA an Ed25519 key.
func CheckAlgKey(alg string, key crypto.PublicKey) error {
	if _, err := hashFor(alg); err != nil {
		return err
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		var want elliptic.Curve
		switch alg {
		case "ES256":
			want = elliptic.P256()
		case "ES384":
			want = elliptic.P384()
		case "ES512":
			want = elliptic.P521()
		default:
			return fmt.Errorf("%w: %s with an EC key", ErrKeyMismatch, alg)
		}
		if k.Curve != want {
			return fmt.Errorf("%w: %s with curve %s", ErrKeyMismatch, alg, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
			return fmt.Errorf("%w: %s with an RSA key", ErrKeyMismatch, alg)
		}
		if k.N.BitLen() < MinRSABits || k.N.BitLen() > MaxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits", ErrKeyMismatch, k.N.BitLen())
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" && alg != "Ed25519" {
			return fmt.Errorf("%w: %s with an Ed25519 key", ErrKeyMismatch, alg)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKeyType, key)
	}
	return nil
}

func newHash(h crypto.Hash) hash.Hash {
	switch h {
	case crypto.SHA256:
		return sha256.New()
	case crypto.SHA384:
		return sha512.New384()
	default:
		return sha512.New()
	}
}

// VerifySignature checks sig over signingInput with key under alg, after
// checking that alg fits the key.
func VerifySignature(alg string, key crypto.PublicKey, signingInput string, sig []byte) error {
	if err := CheckAlgKey(alg, key); err != nil {
		return err
	}
	h, _ := hashFor(alg)
	if h == 0 { // EdDSA
		if !ed25519.Verify(key.(ed25519.PublicKey), []byte(signingInput), sig) {
			return ErrInvalidSignature
		}
		return nil
	}
	hh := newHash(h)
	hh.Write([]byte(signingInput))
	digest := hh.Sum(make([]byte, 0, 64))
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return ErrInvalidSignature
		}
		var buf [2*66 + 9]byte
		if !ecdsa.VerifyASN1(k, digest, rawToASN1(buf[:0], sig[:size], sig[size:])) {
			return ErrInvalidSignature
		}
	case *rsa.PublicKey:
		var err error
		if alg[0] == 'P' {
			err = rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		}
		if err != nil {
			return ErrInvalidSignature
		}
	}
	return nil
}

// rawToASN1 appends the DER SEQUENCE { INTEGER r, INTEGER s } for the
// big-endian unsigned r and s of a JWS ECDSA signature.
func rawToASN1(dst, r, s []byte) []byte {
	trim := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		return b
	}
	r, s = trim(r), trim(s)
	intLen := func(b []byte) int {
		if len(b) == 0 || b[0]&0x80 != 0 {
			return len(b) + 1
		}
		return len(b)
	}
	appendInt := func(dst, b []byte) []byte {
		dst = append(dst, 0x02, byte(intLen(b)))
		if len(b) == 0 || b[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		return append(dst, b...)
	}
	body := 2 + intLen(r) + 2 + intLen(s)
	dst = append(dst, 0x30)
	if body >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(body))
	dst = appendInt(dst, r)
	return appendInt(dst, s)
}

// Verify checks the token's signature with key under the header's alg.
func (t *Token) Verify(key crypto.PublicKey) error {
	return VerifySignature(t.Header.Alg, key, t.SigningInput, t.Signature)
}

// Claims decodes the payload, strictly, as a JSON object.
func (t *Token) Claims() (map[string]any, error) {
	var claims map[string]any
	if err := strictjson.Unmarshal(t.Payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if claims == nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	return claims, nil
}

// CheckExp requires a numeric `exp` claim and rejects it when it lies more
// than leeway before now. `nbf` and `iat` are not checked (as in Trustee);
// see CheckTimes for the stricter rules.
func CheckExp(claims map[string]any, now time.Time, leeway time.Duration) error {
	exp, ok, err := numericDate(claims, "exp")
	if err != nil || !ok {
		return ErrMissingExp
	}
	if exp < float64(now.Unix())-leeway.Seconds() {
		return fmt.Errorf("%w at %d", ErrExpired, int64(exp))
	}
	return nil
}

// TimeRules are the time checks of CheckTimes.
type TimeRules struct {
	// Leeway is the clock skew tolerated on every bound.
	Leeway time.Duration
	// MaxLifetime bounds how long a token may be valid: exp - iat and
	// exp - now may not exceed MaxLifetime + Leeway. Zero or negative
	// leaves the lifetime unbounded.
	MaxLifetime time.Duration
}

// CheckTimes applies the RFC 7519 time claims:
//
//   - `exp` is required and must not lie more than Leeway before now;
//   - `nbf`, when present, must not lie more than Leeway after now;
//   - `iat`, when present, must not lie more than Leeway after now;
//   - with MaxLifetime > 0, neither exp - iat (when `iat` is present) nor
//     exp - now may exceed MaxLifetime + Leeway, so a token minted with a
//     far-future `exp` is refused even when `iat` is omitted.
//
// Present `nbf` and `iat` claims must be JSON numbers.
func CheckTimes(claims map[string]any, now time.Time, r TimeRules) error {
	if err := CheckExp(claims, now, r.Leeway); err != nil {
		return err
	}
	exp, _, _ := numericDate(claims, "exp")
	nowS, leeway := float64(now.Unix()), r.Leeway.Seconds()
	nbf, hasNbf, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	if hasNbf && nbf > nowS+leeway {
		return fmt.Errorf("%w: nbf %d, now %d", ErrNotYetValid, int64(nbf), now.Unix())
	}
	iat, hasIat, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if hasIat && iat > nowS+leeway {
		return fmt.Errorf("%w: iat %d, now %d", ErrIssuedInFuture, int64(iat), now.Unix())
	}
	if r.MaxLifetime <= 0 {
		return nil
	}
	limit := r.MaxLifetime.Seconds() + leeway
	if hasIat && exp-iat > limit {
		return fmt.Errorf("%w: exp - iat = %.0f s, maximum %s", ErrLifetimeTooLong, exp-iat, r.MaxLifetime)
	}
	if exp-nowS > limit {
		return fmt.Errorf("%w: exp is %.0f s from now, maximum %s", ErrLifetimeTooLong, exp-nowS, r.MaxLifetime)
	}
	return nil
}

// numericDate reads a NumericDate claim. ok is false when the claim is
// absent (or null); a present non-numeric or non-finite value is an error.
func numericDate(claims map[string]any, name string) (v float64, ok bool, err error) {
	raw, present := claims[name]
	if !present || raw == nil {
		return 0, false, nil
	}
	switch n := raw.(type) {
	case float64:
		v = n
	case json.Number:
		if v, err = n.Float64(); err != nil {
			return 0, false, fmt.Errorf("%w: `%s`", ErrInvalidTimeClaim, name)
		}
	default:
		return 0, false, fmt.Errorf("%w: `%s` is %T", ErrInvalidTimeClaim, name, raw)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("%w: `%s`", ErrInvalidTimeClaim, name)
	}
	return v, true, nil
}
