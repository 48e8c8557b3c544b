package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// JWK is a parsed public JSON Web Key.
type JWK struct {
	Kty string
	Alg string
	Kid string
	Use string
	// X5c holds the x5c members as they appeared (base64 DER strings).
	X5c []string
	// Key is *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
}

type rawJWK struct {
	Kty string   `json:"kty"`
	Alg string   `json:"alg"`
	Kid string   `json:"kid"`
	Use string   `json:"use"`
	Crv string   `json:"crv"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	X5c []string `json:"x5c"`
}

func b64url(s string) ([]byte, error) {
	// RFC 7518 mandates unpadded base64url; tolerate padding.
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ParseJWK parses a public JWK (kty RSA, EC on P-256/P-384/P-521, or OKP
// Ed25519), strictly: duplicate members, member names differing in case
// from the JWK ones and invalid UTF-8 are rejected. Private members are
// ignored.
func ParseJWK(data []byte) (*JWK, error) {
	var r rawJWK
	if err := strictjson.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse JWK: %w", err)
	}
	return r.toJWK()
}

func (r *rawJWK) toJWK() (*JWK, error) {
	j := &JWK{Kty: r.Kty, Alg: r.Alg, Kid: r.Kid, Use: r.Use, X5c: r.X5c}
	switch r.Kty {
	case "EC":
		var curve elliptic.Curve
		switch r.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("%w: EC curve %q", ErrUnsupportedKeyType, r.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64url(r.X)
		if err != nil {
			return nil, fmt.Errorf("JWK member x: %w", err)
		}
		y, err := b64url(r.Y)
		if err != nil {
			return nil, fmt.Errorf("JWK member y: %w", err)
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("JWK: EC coordinates must be %d bytes", size)
		}
		pt := make([]byte, 0, 1+2*size)
		pt = append(pt, 4)
		pt = append(pt, x...)
		pt = append(pt, y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, fmt.Errorf("JWK: invalid EC point: %w", err)
		}
		j.Key = k
	case "RSA":
		n, err := b64url(r.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("JWK: invalid RSA member n")
		}
		e, err := b64url(r.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("JWK: invalid RSA member e")
		}
		if len(n) > MaxRSABits/8 {
			return nil, fmt.Errorf("JWK: RSA modulus of more than %d bits", MaxRSABits)
		}
		eb := new(big.Int).SetBytes(e)
		if !eb.IsInt64() || eb.Int64() < 3 || eb.Int64() > 1<<31-1 {
			return nil, errors.New("JWK: invalid RSA exponent")
		}
		j.Key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(eb.Int64())}
	case "OKP":
		if r.Crv != "Ed25519" {
			return nil, fmt.Errorf("%w: OKP curve %q", ErrUnsupportedKeyType, r.Crv)
		}
		x, err := b64url(r.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("JWK: invalid Ed25519 member x")
		}
		j.Key = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("%w: kty %q", ErrUnsupportedKeyType, r.Kty)
	}
	return j, nil
}

// ParseJWKSet parses {"keys":[…]}. The whole document must be strict JSON
// (a duplicate member anywhere rejects the set). Keys that cannot be parsed
// (for example unsupported key types) are skipped and reported in skipped.
func ParseJWKSet(data []byte) (keys []*JWK, skipped []error, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := strictjson.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("parse JWK set: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New("parse JWK set: no `keys` member")
	}
	for i, raw := range set.Keys {
		k, err := ParseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// DecodeX5c decodes one x5c entry: standard base64 DER, URL-safe base64 also
// accepted, whitespace (line breaks) stripped.
func DecodeX5c(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', ' ', '\t':
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(s); err == nil {
			return der, nil
		}
	}
	return nil, errors.New("x5c entry is not base64")
}

// ParsePublicKeyPEM returns the first usable public key in PEM data: a PKIX
// "PUBLIC KEY" (EC, RSA or Ed25519), a PKCS#1 "RSA PUBLIC KEY", or the key of
// a "CERTIFICATE".
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	var lastErr error
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				key = cert.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			lastErr = err
			continue
		}
		switch key.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
			return key, nil
		default:
			lastErr = fmt.Errorf("%w: %T", ErrUnsupportedKeyType, key)
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("no usable PEM public key: %w", lastErr)
	}
	return nil, errors.New("no PEM public key found")
}

// KeysEqual reports whether two public keys are the same key.
func KeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}
