package jose

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/sigil-attestation/sigil/protocol"
)

// TEE key algorithm names, as the guest client's configuration spells them.
const (
	TeeKeyP256 = "ECDH-ES+A256KW-P256"
	TeeKeyP521 = "ECDH-ES+A256KW-P521"
	TeeKeyRSA  = "RSA-OAEP-256"
)

const (
	minRSABits = 2048
	maxRSABits = 16384
	teeRSABits = 2048
)

// curveInfo describes a supported EC curve.
type curveInfo struct {
	name  string // JWK crv
	curve ecdh.Curve
	size  int // coordinate and scalar length in bytes
}

var (
	curveP256 = curveInfo{"P-256", ecdh.P256(), 32}
	curveP521 = curveInfo{"P-521", ecdh.P521(), 66}
)

func curveByName(crv string) (curveInfo, bool) {
	switch crv {
	case curveP256.name:
		return curveP256, true
	case curveP521.name:
		return curveP521, true
	}
	return curveInfo{}, false
}

func curveOf(c ecdh.Curve) (curveInfo, bool) {
	switch c {
	case curveP256.curve:
		return curveP256, true
	case curveP521.curve:
		return curveP521, true
	}
	return curveInfo{}, false
}

// decodeB64 decodes unpadded base64url strictly: padding, line breaks and
// non-zero trailing bits are errors (the Rust client's engine rejects them).
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("illegal line break in base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func encodeB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// PublicKey converts a TEE public key into a validated Go key: *rsa.PublicKey
// for kty RSA (alg RSA-OAEP-256 or RSA1_5, 2048 to 16384 bits, odd modulus,
// odd exponent from 3 to 2^31-1) and *ecdh.PublicKey for kty EC (alg
// ECDH-ES+A256KW, crv P-256 or P-521 with fixed-length coordinates of a point
// on the curve). Every rejection wraps ErrUnsupportedKey.
func PublicKey(key protocol.TeePubKey) (crypto.PublicKey, error) {
	switch key.Kty {
	case "RSA":
		if key.Alg != algRSAOAEP256 && key.Alg != algRSA15 {
			return nil, fmt.Errorf("%w: RSA key with alg %q", ErrUnsupportedKey, key.Alg)
		}
		return rsaPublicKey(key)
	case "EC":
		if key.Alg != algECDHESA256KW {
			return nil, fmt.Errorf("%w: EC key with alg %q", ErrUnsupportedKey, key.Alg)
		}
		ci, ok := curveByName(key.Crv)
		if !ok {
			return nil, fmt.Errorf("%w: EC curve %q", ErrUnsupportedKey, key.Crv)
		}
		return ecPublicKey(ci, key.X, key.Y)
	}
	return nil, fmt.Errorf("%w: kty %q", ErrUnsupportedKey, key.Kty)
}

func rsaPublicKey(key protocol.TeePubKey) (*rsa.PublicKey, error) {
	nb, err := decodeB64(key.N)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA modulus: %w", ErrUnsupportedKey, err)
	}
	eb, err := decodeB64(key.E)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA exponent: %w", ErrUnsupportedKey, err)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("%w: RSA modulus of %d bits (want %d to %d)", ErrUnsupportedKey, bits, minRSABits, maxRSABits)
	}
	if n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: even RSA modulus", ErrUnsupportedKey)
	}
	e := new(big.Int).SetBytes(eb)
	if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: RSA exponent %v", ErrUnsupportedKey, e)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func ecPublicKey(ci curveInfo, xs, ys string) (*ecdh.PublicKey, error) {
	x, err := decodeB64(xs)
	if err != nil {
		return nil, fmt.Errorf("%w: EC x: %w", ErrUnsupportedKey, err)
	}
	y, err := decodeB64(ys)
	if err != nil {
		return nil, fmt.Errorf("%w: EC y: %w", ErrUnsupportedKey, err)
	}
	if len(x) != ci.size || len(y) != ci.size {
		return nil, fmt.Errorf("%w: %s coordinates of %d and %d bytes (want %d)", ErrUnsupportedKey, ci.name, len(x), len(y), ci.size)
	}
	point := make([]byte, 0, 1+2*ci.size)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	pub, err := ci.curve.NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("%w: %s point: %w", ErrUnsupportedKey, ci.name, err)
	}
	return pub, nil
}

// GenerateTeeKey generates a TEE key pair the way the guest client does.
// alg is "ECDH-ES+A256KW-P256" (the default when empty), "ECDH-ES+A256KW-P521"
// or "RSA-OAEP-256" (RSA 2048, e = 65537). EC keys are *ecdsa.PrivateKey,
// RSA keys *rsa.PrivateKey. Since Go 1.26 the standard library ignores rand
// for key generation and always uses a secure source.
func GenerateTeeKey(rand io.Reader, alg string) (crypto.PrivateKey, error) {
	switch alg {
	case "", TeeKeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case TeeKeyP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand)
	case TeeKeyRSA:
		return rsa.GenerateKey(rand, teeRSABits)
	}
	return nil, fmt.Errorf("%w: TEE key algorithm %q", ErrUnsupportedKey, alg)
}

// ecdhPrivate converts a supported EC private key to its ECDH form.
func ecdhPrivate(priv crypto.PrivateKey) (*ecdh.PrivateKey, curveInfo, error) {
	var k *ecdh.PrivateKey
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		var err error
		if k, err = p.ECDH(); err != nil {
			return nil, curveInfo{}, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
		}
	case *ecdh.PrivateKey:
		k = p
	default:
		return nil, curveInfo{}, fmt.Errorf("%w: private key type %T", ErrUnsupportedKey, priv)
	}
	ci, ok := curveOf(k.Curve())
	if !ok {
		return nil, curveInfo{}, fmt.Errorf("%w: EC curve %v", ErrUnsupportedKey, k.Curve())
	}
	return k, ci, nil
}

// TeePubKeyOf returns the JWK the guest client sends for priv: for EC keys
// {kty EC, crv, alg ECDH-ES+A256KW, x, y} with fixed-length coordinates, for
// RSA keys {kty RSA, alg RSA-OAEP-256, n, e} with minimal big-endian integers.
// priv is a *ecdsa.PrivateKey, *ecdh.PrivateKey (P-256 or P-521) or
// *rsa.PrivateKey.
func TeePubKeyOf(priv crypto.PrivateKey) (protocol.TeePubKey, error) {
	if rk, ok := priv.(*rsa.PrivateKey); ok {
		if bits := rk.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return protocol.TeePubKey{}, fmt.Errorf("%w: RSA key of %d bits", ErrUnsupportedKey, bits)
		}
		return protocol.TeePubKey{
			Kty: "RSA",
			Alg: algRSAOAEP256,
			N:   encodeB64(rk.N.Bytes()),
			E:   encodeB64(big.NewInt(int64(rk.E)).Bytes()),
		}, nil
	}
	k, ci, err := ecdhPrivate(priv)
	if err != nil {
		return protocol.TeePubKey{}, err
	}
	point := k.PublicKey().Bytes() // 0x04 || x || y, fixed length
	return protocol.TeePubKey{
		Kty: "EC",
		Crv: ci.name,
		Alg: algECDHESA256KW,
		X:   encodeB64(point[1 : 1+ci.size]),
		Y:   encodeB64(point[1+ci.size:]),
	}, nil
}

// PEM block types.
const (
	pemRSAPrivateKey = "RSA PRIVATE KEY"
	pemPrivateKey    = "PRIVATE KEY"
)

// MarshalPrivateKeyPEM encodes a TEE private key as the guest client exports
// it: RSA as PKCS#1 ("RSA PRIVATE KEY"), EC (P-256, P-521) as PKCS#8
// ("PRIVATE KEY"), LF line endings.
func MarshalPrivateKeyPEM(priv crypto.PrivateKey) ([]byte, error) {
	if rk, ok := priv.(*rsa.PrivateKey); ok {
		return pem.EncodeToMemory(&pem.Block{Type: pemRSAPrivateKey, Bytes: x509.MarshalPKCS1PrivateKey(rk)}), nil
	}
	if _, _, err := ecdhPrivate(priv); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivateKeyPEM parses the first PEM block of data as a TEE private key,
// trying PKCS#1 RSA, then PKCS#8 (P-256, P-521 or RSA), then SEC 1 EC. EC keys
// are returned as *ecdsa.PrivateKey, RSA keys as *rsa.PrivateKey.
func ParsePrivateKeyPEM(data []byte) (crypto.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("parse private key: no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			if _, _, err := ecdhPrivate(k); err != nil {
				return nil, fmt.Errorf("parse private key: %w", err)
			}
			return k, nil
		}
		return nil, fmt.Errorf("parse private key: %w: PKCS#8 key of type %T", ErrUnsupportedKey, k)
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %q block is neither PKCS#1, PKCS#8 nor SEC 1: %w", block.Type, err)
	}
	if _, _, err := ecdhPrivate(k); err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	return k, nil
}
