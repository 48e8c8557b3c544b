package eventlog

import (
	"encoding/binary"
	"math/bits"
)

// sm3Sum returns the SM3 digest (GB/T 32905-2016) of data. SM3 appears in
// event logs of Hygon CSV guests; it is only used here to compute
// digest_matches_event.
func sm3Sum(data []byte) [32]byte {
	v := [8]uint32{
		0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600,
		0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e,
	}
	// Padding: 0x80, zeros, 64-bit big-endian bit length (as in SHA-256).
	n := len(data)
	padded := make([]byte, 0, (n+9+63)&^63)
	padded = append(padded, data...)
	padded = append(padded, 0x80)
	for len(padded)%64 != 56 {
		padded = append(padded, 0)
	}
	padded = binary.BigEndian.AppendUint64(padded, uint64(n)*8)

	var w [68]uint32
	var w1 [64]uint32
	for blk := padded; len(blk) > 0; blk = blk[64:] {
		for j := range 16 {
			w[j] = binary.BigEndian.Uint32(blk[4*j:])
		}
		for j := 16; j < 68; j++ {
			x := w[j-16] ^ w[j-9] ^ bits.RotateLeft32(w[j-3], 15)
			w[j] = sm3P1(x) ^ bits.RotateLeft32(w[j-13], 7) ^ w[j-6]
		}
		for j := range 64 {
			w1[j] = w[j] ^ w[j+4]
		}
		a, b, c, d, e, f, g, h := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		for j := range 64 {
			t := uint32(0x79cc4519)
			if j >= 16 {
				t = 0x7a879d8a
			}
			a12 := bits.RotateLeft32(a, 12)
			ss1 := bits.RotateLeft32(a12+e+bits.RotateLeft32(t, j%32), 7)
			ss2 := ss1 ^ a12
			var ff, gg uint32
			if j < 16 {
				ff = a ^ b ^ c
				gg = e ^ f ^ g
			} else {
				ff = (a & b) | (a & c) | (b & c)
				gg = (e & f) | (^e & g)
			}
			tt1 := ff + d + ss2 + w1[j]
			tt2 := gg + h + ss1 + w[j]
			d = c
			c = bits.RotateLeft32(b, 9)
			b = a
			a = tt1
			h = g
			g = bits.RotateLeft32(f, 19)
			f = e
			e = sm3P0(tt2)
		}
		v[0] ^= a
		v[1] ^= b
		v[2] ^= c
		v[3] ^= d
		v[4] ^= e
		v[5] ^= f
		v[6] ^= g
		v[7] ^= h
	}
	var out [32]byte
	for i, x := range v {
		binary.BigEndian.PutUint32(out[4*i:], x)
	}
	return out
}

func sm3P0(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 9) ^ bits.RotateLeft32(x, 17) }
func sm3P1(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 15) ^ bits.RotateLeft32(x, 23) }
