package nras

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"
)

// FuzzParseDetachedEAT feeds arbitrary responses to the parser and, when
// they parse, to the claim checks and the signature verification: none may
// panic, and a response must never verify with a key that signed nothing.
func FuzzParseDetachedEAT(f *testing.F) {
	f.Add(readFile(f, "hopperClaimsv3_detached_eat.json"))
	f.Add(readFile(f, "switch_detached_eat.json"))
	f.Add([]byte(`[["JWT","a.b.c"],{}]`))
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	nonce, _ := hex.DecodeString(realNonce)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDetachedEAT(data)
		if err != nil {
			return
		}
		for _, c := range []checks{
			realChecks(realNonce, prodIssuer, hopperIAT, 0),
			realChecks(realNonce, stgIssuer, switchIAT, 0),
		} {
			if res, err := d.checkClaims(c); err == nil && len(res.Names) != len(res.Devices) {
				t.Fatalf("names %v for %d devices", res.Names, len(res.Devices))
			}
		}
		foreign := StaticKeys{d.overall.kid: &other.PublicKey}
		for _, dev := range d.devices {
			foreign[dev.kid] = &other.PublicKey
		}
		if _, err := VerifyDetachedEAT(data, foreign, nonce, prodIssuer, time.Unix(hopperIAT, 0)); err == nil {
			t.Fatal("verified with a key that signed nothing")
		}
	})
}

// FuzzParseJWKS checks that the JWKS parser never panics and returns only
// P-384 keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x5c":["MIIB"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if k == nil || k.Curve != elliptic.P384() {
				t.Fatalf("kid %q: not a P-384 key", kid)
			}
		}
	})
}
