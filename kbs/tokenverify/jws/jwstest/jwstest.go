// Package jwstest signs compact JWS tokens and builds JWKs for tests.
package jwstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
)

// Sign returns header.payload.signature signed with priv under alg. The
// header gets "alg" set to alg unless it already has one (so tests can lie).
func Sign(tb testing.TB, alg string, priv crypto.Signer, header, claims map[string]any) string {
	tb.Helper()
	h := map[string]any{"alg": alg}
	for k, v := range header {
		h[k] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		tb.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := b64(hb) + "." + b64(cb)
	sig, err := SignInput(alg, priv, []byte(input))
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64(sig)
}

// SignInput produces a JWS signature over input.
func SignInput(alg string, priv crypto.Signer, input []byte) ([]byte, error) {
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	digest := func() []byte {
		switch h {
		case crypto.SHA256:
			d := sha256.Sum256(input)
			return d[:]
		case crypto.SHA384:
			d := sha512.Sum384(input)
			return d[:]
		default:
			d := sha512.Sum512(input)
			return d[:]
		}
	}
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest())
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	case *rsa.PrivateKey:
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, h, digest())
	}
	return nil, fmt.Errorf("unsupported key %T", priv)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK returns the public JWK members of pub, with alg (and kid when not
// empty) set.
func JWK(pub crypto.PublicKey, alg, kid string) map[string]any {
	m := map[string]any{}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		b, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64(b[1:1+size]), b64(b[1+size:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	default:
		panic(fmt.Sprintf("unsupported key %T", pub))
	}
	if alg != "" {
		m["alg"] = alg
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}
