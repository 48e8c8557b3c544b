package kbstest

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/sigil-attestation/sigil/protocol"
)

// TestJWEVector reproduces the independent ECDH-ES+A256KW vector of
// guest-client.md §1.5, so the fake KBS's encryption is known-good.
func TestJWEVector(t *testing.T) {
	scalar := func(start byte) []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	client, err := ecdh.P256().NewPrivateKey(scalar(1))
	if err != nil {
		t.Fatal(err)
	}
	eph, err := ecdh.P256().NewPrivateKey(scalar(0x21))
	if err != nil {
		t.Fatal(err)
	}
	pt := client.PublicKey().Bytes()
	key := protocol.TeePubKey{Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW",
		X: base64.RawURLEncoding.EncodeToString(pt[1:33]), Y: base64.RawURLEncoding.EncodeToString(pt[33:])}

	z, _ := eph.ECDH(client.PublicKey())
	if got := hex.EncodeToString(z); got != "4fe243908f378aa1c2a69538822e6ed908c3225d8692575507c649901245150a" {
		t.Fatalf("Z = %s", got)
	}
	if got := hex.EncodeToString(concatKDF(z, "ECDH-ES+A256KW")); got != "b403833737c544b17814a63edb2770bdf0bc9b8a51cade91f4f1c64861a2ccf4" {
		t.Fatalf("KEK = %s", got)
	}
	cek := bytes.Repeat([]byte{0xAB}, 32)
	iv := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	resp, err := encryptECDH(key, eph, 32, cek, iv, []byte("test content"))
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Response{
		Protected:    "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJIeFFCUnIteHNsSDRUMDNiNE5UTno5ZDZfWmhLbFNEalY1UUNINE1TdTU0IiwieSI6IjdKbGFDTEg2ZHdUZlBjd0xVS2xtVW1QN2R4SDVYNS1LUkp4UWx1UjhpU3MifX0",
		EncryptedKey: "juiM1nFeHV3yzsK2CqZAYSJTF75uDcKQlxLJctPzht1v6-KUsUbCzA",
		IV:           "AAECAwQFBgcICQoL",
		Ciphertext:   "VD51Km50CjYwSjf9",
		Tag:          "CiyaaH6L3kdd2wgJa9l-bA",
	}
	if *resp != want {
		t.Fatalf("JWE =\n%+v\nwant\n%+v", *resp, want)
	}
}
