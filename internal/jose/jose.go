// Package jose implements the JWE that carries KBS resources to a TEE: the
// flattened JSON serialisation Trustee emits (A256GCM content encryption with
// RSA-OAEP-256, RSA1_5 or ECDH-ES+A256KW key management) and the decryption
// the CoCo guest client performs, plus helpers for TEE key pairs.
package jose

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/sigil-attestation/sigil/protocol"
)

// JOSE algorithm identifiers.
const (
	algRSAOAEP256   = "RSA-OAEP-256"
	algRSA15        = "RSA1_5"
	algECDHESA256KW = "ECDH-ES+A256KW"
	encA256GCM      = "A256GCM"
)

const (
	cekSize = 32 // AES-256
	ivSize  = 12 // GCM standard nonce
	tagSize = 16
)

var (
	// ErrUnsupportedKey is wrapped by every error caused by a TEE key (or
	// private key) of an unsupported or invalid kind.
	ErrUnsupportedKey = errors.New("jose: unsupported TEE key")
	// ErrInvalidJWE is wrapped by every Decrypt error caused by the message:
	// bad encoding, unknown algorithm, failed unwrap or authentication.
	ErrInvalidJWE = errors.New("jose: invalid JWE")
)

// Encrypt produces the flattened JWE Trustee emits for a TEE public key. The
// content is always encrypted with A256GCM under a fresh 32-byte CEK and a
// 12-byte IV; the key management algorithm follows the key:
//
//   - kty RSA, alg RSA-OAEP-256: RSAES-OAEP with SHA-256 and MGF1-SHA-256;
//   - kty RSA, alg RSA1_5: RSAES-PKCS1-v1_5 (deprecated; callers should log);
//   - kty EC, crv P-256 or P-521, alg ECDH-ES+A256KW: ephemeral-static ECDH,
//     Concat KDF and AES-256 key wrap of the CEK.
//
// All randomness is read from rand: for EC keys the ephemeral scalar, then
// the CEK, then the IV; for RSA keys the CEK, the IV, then the padding (the
// standard library ignores rand for PKCS#1 v1.5 padding since Go 1.26). Any
// other key is rejected with an error wrapping ErrUnsupportedKey.
func Encrypt(rand io.Reader, key protocol.TeePubKey, plaintext []byte) (*protocol.Response, error) {
	pub, err := PublicKey(key)
	if err != nil {
		return nil, err
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		cek, iv, err := readCEKAndIV(rand)
		if err != nil {
			return nil, err
		}
		var ek []byte
		if key.Alg == algRSA15 {
			//lint:ignore SA1019 Trustee still accepts RSA1_5 TEE keys (a warning is logged).
			ek, err = rsa.EncryptPKCS1v15(rand, pub, cek)
		} else {
			ek, err = rsa.EncryptOAEP(sha256.New(), rand, pub, cek, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("jose: encrypt CEK with %s: %w", key.Alg, err)
		}
		header := `{"alg":"` + key.Alg + `","enc":"` + encA256GCM + `"}`
		return sealContent(header, ek, cek, iv, plaintext)
	case *ecdh.PublicKey:
		ci, _ := curveOf(pub.Curve())
		eph, err := randomScalar(rand, ci)
		if err != nil {
			return nil, err
		}
		cek, iv, err := readCEKAndIV(rand)
		if err != nil {
			return nil, err
		}
		return encryptECDH(pub, ci, eph, cek, iv, plaintext)
	}
	return nil, fmt.Errorf("%w: key type %T", ErrUnsupportedKey, pub)
}

func readCEKAndIV(rand io.Reader) (cek, iv []byte, err error) {
	buf := make([]byte, cekSize+ivSize)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, nil, fmt.Errorf("jose: read CEK and IV: %w", err)
	}
	return buf[:cekSize:cekSize], buf[cekSize:], nil
}

// randomScalar draws an ephemeral private key from rand by rejection
// sampling (a P-521 scalar has 521 bits, so the top seven bits of its 66
// bytes are cleared first).
func randomScalar(rand io.Reader, ci curveInfo) (*ecdh.PrivateKey, error) {
	buf := make([]byte, ci.size)
	for range 100 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("jose: read ephemeral key: %w", err)
		}
		if ci.size == 66 {
			buf[0] &= 0x01
		}
		if k, err := ci.curve.NewPrivateKey(buf); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("jose: random source keeps yielding invalid scalars")
}

// encryptECDH is Encrypt for ECDH-ES+A256KW with explicit ephemeral key, CEK
// and IV.
func encryptECDH(pub *ecdh.PublicKey, ci curveInfo, eph *ecdh.PrivateKey, cek, iv, plaintext []byte) (*protocol.Response, error) {
	z, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("jose: ECDH: %w", err)
	}
	ek, err := aesKeyWrap(concatKDF(z), cek)
	if err != nil {
		return nil, fmt.Errorf("jose: %w", err)
	}
	epk := eph.PublicKey().Bytes()
	header := `{"alg":"` + algECDHESA256KW + `","enc":"` + encA256GCM + `","epk":{"crv":"` + ci.name +
		`","kty":"EC","x":"` + encodeB64(epk[1:1+ci.size]) + `","y":"` + encodeB64(epk[1+ci.size:]) + `"}}`
	return sealContent(header, ek, cek, iv, plaintext)
}

// sealContent encrypts plaintext with AES-256-GCM; the AAD is the ASCII of
// the base64url-encoded protected header (RFC 7516 §5.1 step 14).
func sealContent(header string, ek, cek, iv, plaintext []byte) (*protocol.Response, error) {
	protected := encodeB64([]byte(header))
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, iv, plaintext, []byte(protected))
	n := len(sealed) - tagSize
	return &protocol.Response{
		Protected:    protected,
		EncryptedKey: encodeB64(ek),
		IV:           encodeB64(iv),
		Ciphertext:   encodeB64(sealed[:n]),
		Tag:          encodeB64(sealed[n:]),
	}, nil
}

func newGCM(cek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("jose: content key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("jose: content cipher: %w", err)
	}
	return aead, nil
}

// Decrypt decrypts a resource response the way the Rust guest client does:
// every member is unpadded base64url; the CEK is unwrapped according to the
// protected header's alg (RSA1_5, RSA-OAEP-256 or ECDH-ES+A256KW, whose epk
// must be on the private key's curve); enc and the aad member are ignored and
// the content is always AES-256-GCM with a 12-byte IV and a 16-byte tag; the
// AAD is the base64url of the protected header re-serialised from its parsed
// form (compact; alg, enc, then the other members, with object keys in byte
// order at every level), not the received string. A JWE whose header is not
// already in that form (go-jose's epk member order, for one) therefore fails
// to authenticate, as it does with the Rust client built without serde_json's
// preserve_order. Duplicate header keys are rejected.
//
// priv is a *ecdsa.PrivateKey, *ecdh.PrivateKey or *rsa.PrivateKey.
func Decrypt(priv crypto.PrivateKey, resp *protocol.Response) ([]byte, error) {
	if resp == nil {
		return nil, fmt.Errorf("%w: nil response", ErrInvalidJWE)
	}
	var headerJSON, ek, iv, ct, tag []byte
	for _, f := range []struct {
		name string
		val  string
		dst  *[]byte
	}{
		{"protected", resp.Protected, &headerJSON},
		{"encrypted_key", resp.EncryptedKey, &ek},
		{"iv", resp.IV, &iv},
		{"ciphertext", resp.Ciphertext, &ct},
		{"tag", resp.Tag, &tag},
	} {
		b, err := decodeB64(f.val)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidJWE, f.name, err)
		}
		*f.dst = b
	}

	h, err := parseHeader(headerJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %w", ErrInvalidJWE, err)
	}
	cek, err := unwrapCEK(priv, h, ek)
	if err != nil {
		return nil, err
	}
	if len(cek) != cekSize {
		return nil, fmt.Errorf("%w: content key of %d bytes, want %d", ErrInvalidJWE, len(cek), cekSize)
	}
	if len(iv) != ivSize {
		return nil, fmt.Errorf("%w: iv of %d bytes, want %d", ErrInvalidJWE, len(iv), ivSize)
	}
	if len(tag) != tagSize {
		return nil, fmt.Errorf("%w: tag of %d bytes, want %d", ErrInvalidJWE, len(tag), tagSize)
	}
	aead, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	sealed := make([]byte, 0, len(ct)+len(tag))
	sealed = append(append(sealed, ct...), tag...)
	plaintext, err := aead.Open(nil, iv, sealed, []byte(encodeB64(h.aad)))
	if err != nil {
		return nil, fmt.Errorf("%w: content decryption: %w", ErrInvalidJWE, err)
	}
	return plaintext, nil
}

func unwrapCEK(priv crypto.PrivateKey, h *header, ek []byte) ([]byte, error) {
	switch h.alg {
	case algRSA15, algRSAOAEP256:
		rk, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: alg %s needs an RSA key, have %T", ErrUnsupportedKey, h.alg, priv)
		}
		var cek []byte
		var err error
		if h.alg == algRSA15 {
			//lint:ignore SA1019 accepted like the Rust client does.
			cek, err = rsa.DecryptPKCS1v15(nil, rk, ek)
		} else {
			cek, err = rsa.DecryptOAEP(sha256.New(), nil, rk, ek, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s key decryption: %w", ErrInvalidJWE, h.alg, err)
		}
		return cek, nil
	case algECDHESA256KW:
		k, ci, err := ecdhPrivate(priv)
		if err != nil {
			return nil, err
		}
		epk, err := h.epk()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidJWE, err)
		}
		if epk.crv != ci.name {
			return nil, fmt.Errorf("%w: epk curve %q does not match the %s key", ErrInvalidJWE, epk.crv, ci.name)
		}
		pub, err := ecPublicKey(ci, epk.x, epk.y)
		if err != nil {
			return nil, fmt.Errorf("%w: epk: %w", ErrInvalidJWE, err)
		}
		z, err := k.ECDH(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: ECDH: %w", ErrInvalidJWE, err)
		}
		if len(ek) != cekSize+8 {
			return nil, fmt.Errorf("%w: encrypted_key of %d bytes, want %d", ErrInvalidJWE, len(ek), cekSize+8)
		}
		cek, err := aesKeyUnwrap(concatKDF(z), ek)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidJWE, err)
		}
		return cek, nil
	}
	return nil, fmt.Errorf("%w: unsupported alg %q", ErrInvalidJWE, h.alg)
}
