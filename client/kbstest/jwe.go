package kbstest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/sigil-attestation/sigil/protocol"
)

var b64 = base64.RawURLEncoding

// encrypt builds the flattened JWE of plaintext for key, byte-compatible
// with what Trustee emits (alg and enc first, epk members alphabetical).
func encrypt(rnd io.Reader, key protocol.TeePubKey, plaintext []byte) (*protocol.Response, error) {
	cek := make([]byte, 32)
	iv := make([]byte, 12)
	if _, err := io.ReadFull(rnd, cek); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, iv); err != nil {
		return nil, err
	}
	switch key.Kty {
	case "EC":
		curve, size, err := curveOf(key.Crv)
		if err != nil {
			return nil, err
		}
		eph, err := curve.GenerateKey(rnd)
		if err != nil {
			return nil, err
		}
		return encryptECDH(key, eph, size, cek, iv, plaintext)
	case "RSA":
		n, err := b64.DecodeString(key.N)
		if err != nil {
			return nil, fmt.Errorf("rsa n: %w", err)
		}
		e, err := b64.DecodeString(key.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("rsa e: invalid")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
		if err != nil {
			return nil, err
		}
		return seal(`{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, ek, cek, iv, plaintext)
	}
	return nil, fmt.Errorf("unsupported key type %q", key.Kty)
}

func curveOf(crv string) (ecdh.Curve, int, error) {
	switch crv {
	case "P-256":
		return ecdh.P256(), 32, nil
	case "P-521":
		return ecdh.P521(), 66, nil
	}
	return nil, 0, fmt.Errorf("unsupported curve %q", crv)
}

func encryptECDH(key protocol.TeePubKey, eph *ecdh.PrivateKey, size int, cek, iv, plaintext []byte) (*protocol.Response, error) {
	x, errX := b64.DecodeString(key.X)
	y, errY := b64.DecodeString(key.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, errors.New("ec key: invalid coordinates")
	}
	curve, _, _ := curveOf(key.Crv)
	pub, err := curve.NewPublicKey(append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("ec key: %w", err)
	}
	z, err := eph.ECDH(pub)
	if err != nil {
		return nil, err
	}
	ek, err := aesKeyWrap(concatKDF(z, "ECDH-ES+A256KW"), cek)
	if err != nil {
		return nil, err
	}
	pt := eph.PublicKey().Bytes()
	header := fmt.Sprintf(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":%q,"kty":"EC","x":%q,"y":%q}}`,
		key.Crv, b64.EncodeToString(pt[1:1+size]), b64.EncodeToString(pt[1+size:]))
	return seal(header, ek, cek, iv, plaintext)
}

func seal(header string, encryptedKey, cek, iv, plaintext []byte) (*protocol.Response, error) {
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	protected := b64.EncodeToString([]byte(header))
	out := gcm.Seal(nil, iv, plaintext, []byte(protected))
	ct, tag := out[:len(out)-16], out[len(out)-16:]
	return &protocol.Response{
		Protected:    protected,
		EncryptedKey: b64.EncodeToString(encryptedKey),
		IV:           b64.EncodeToString(iv),
		Ciphertext:   b64.EncodeToString(ct),
		Tag:          b64.EncodeToString(tag),
	}, nil
}

// concatKDF is the single-round NIST Concat KDF of RFC 7518 §4.6.2 for a
// 256-bit key with empty apu/apv.
func concatKDF(z []byte, alg string) []byte {
	h := sha256.New()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], 1)
	h.Write(n[:])
	h.Write(z)
	binary.BigEndian.PutUint32(n[:], uint32(len(alg)))
	h.Write(n[:])
	h.Write([]byte(alg))
	h.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	binary.BigEndian.PutUint32(n[:], 256)
	h.Write(n[:])
	return h.Sum(nil)
}

// aesKeyWrap is RFC 3394 AES key wrap.
func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, errors.New("key wrap: key length must be a multiple of 8, at least 16")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	a := []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}
	r := make([]byte, len(key))
	copy(r, key)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 0; i < n; i++ {
			copy(buf[:8], a)
			copy(buf[8:], r[i*8:i*8+8])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[i*8:i*8+8], buf[8:])
		}
	}
	return append(a, r...), nil
}
