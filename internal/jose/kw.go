package jose

import (
	"crypto/aes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// kwDefaultIV is the RFC 3394 §2.2.3.1 default initial value.
var kwDefaultIV = [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}

// aesKeyWrap wraps key data (a multiple of 8 bytes, at least 16) with kek
// using the RFC 3394 AES key wrap.
func aesKeyWrap(kek, data []byte) ([]byte, error) {
	if len(data) < 16 || len(data)%8 != 0 {
		return nil, fmt.Errorf("key wrap: key data length %d is not a multiple of 8 of at least 16", len(data))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key wrap: %w", err)
	}
	n := len(data) / 8
	out := make([]byte, 8+len(data))
	copy(out, kwDefaultIV[:])
	copy(out[8:], data)
	var b [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(b[:8], out[:8])
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:8*i+8], b[8:])
		}
	}
	return out, nil
}

var errKeyUnwrap = errors.New("key unwrap: integrity check failed")

// aesKeyUnwrap reverses aesKeyWrap and checks the integrity value.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("key unwrap: wrapped length %d is not a multiple of 8 of at least 24", len(wrapped))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key unwrap: %w", err)
	}
	n := len(wrapped)/8 - 1
	var a [8]byte
	copy(a[:], wrapped[:8])
	r := make([]byte, 8*n)
	copy(r, wrapped[8:])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], r[8*(i-1):8*i])
			block.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(r[8*(i-1):8*i], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], kwDefaultIV[:]) != 1 {
		return nil, errKeyUnwrap
	}
	return r, nil
}

// concatKDF derives the ECDH-ES+A256KW key-encryption key from the shared
// secret z (RFC 7518 §4.6.2, NIST SP 800-56A Concat KDF with SHA-256):
// AlgorithmID "ECDH-ES+A256KW", empty PartyUInfo and PartyVInfo, and a
// 256-bit output, so a single round suffices.
func concatKDF(z []byte) []byte {
	h := sha256.New()
	var u32 [4]byte
	binary.BigEndian.PutUint32(u32[:], 1) // round counter
	h.Write(u32[:])
	h.Write(z)
	binary.BigEndian.PutUint32(u32[:], uint32(len(algECDHESA256KW)))
	h.Write(u32[:])
	h.Write([]byte(algECDHESA256KW))
	binary.BigEndian.PutUint32(u32[:], 0) // PartyUInfo
	h.Write(u32[:])
	h.Write(u32[:])                         // PartyVInfo
	binary.BigEndian.PutUint32(u32[:], 256) // SuppPubInfo: key length in bits
	h.Write(u32[:])
	return h.Sum(nil)
}
