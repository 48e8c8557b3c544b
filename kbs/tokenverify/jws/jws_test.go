package jws

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
)

type testKeys struct {
	p256, p384, p521 *ecdsa.PrivateKey
	rsa              *rsa.PrivateKey
	ed               ed25519.PrivateKey
}

func newKeys(t testing.TB) testKeys {
	t.Helper()
	var k testKeys
	var err error
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestInteropGoJose signs with go-jose (an independent implementation) and
// verifies with this package.
func TestInteropGoJose(t *testing.T) {
	k := newKeys(t)
	cases := []struct {
		alg  jose.SignatureAlgorithm
		priv crypto.Signer
	}{
		{jose.ES256, k.p256}, {jose.ES384, k.p384}, {jose.ES512, k.p521},
		{jose.RS256, k.rsa}, {jose.RS384, k.rsa}, {jose.RS512, k.rsa},
		{jose.PS256, k.rsa}, {jose.PS384, k.rsa}, {jose.PS512, k.rsa},
		{jose.EdDSA, k.ed},
	}
	for _, c := range cases {
		t.Run(string(c.alg), func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.priv}, nil)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := signer.Sign([]byte(`{"exp":4102444800,"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			compact, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Parse(compact)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header.Alg != string(c.alg) {
				t.Fatalf("alg %q", tok.Header.Alg)
			}
			if err := tok.Verify(c.priv.Public()); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// A flipped payload byte must fail.
			parts := strings.Split(compact, ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload[len(payload)-2] ^= 1
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			tampered, err := Parse(strings.Join(parts, "."))
			if err != nil {
				t.Fatal(err)
			}
			if err := tampered.Verify(c.priv.Public()); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("tampered payload: got %v", err)
			}
		})
	}
}

func TestAlgKeyConfusion(t *testing.T) {
	k := newKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"exp": 4102444800}
	cases := []struct {
		name    string
		token   string
		key     crypto.PublicKey
		wantErr error
	}{
		{"ES256 with P-384 key", jwstest.Sign(t, "ES256", k.p256, nil, claims), k.p384.Public(), ErrKeyMismatch},
		{"ES384 token checked with P-256 key", jwstest.Sign(t, "ES384", k.p384, nil, claims), k.p256.Public(), ErrKeyMismatch},
		{"RS256 with EC key", jwstest.Sign(t, "RS256", k.rsa, nil, claims), k.p256.Public(), ErrKeyMismatch},
		{"EdDSA with RSA key", jwstest.Sign(t, "EdDSA", k.ed, nil, claims), k.rsa.Public(), ErrKeyMismatch},
		{"ES256 with Ed25519 key", jwstest.Sign(t, "ES256", k.p256, nil, claims), k.ed.Public(), ErrKeyMismatch},
		{"RSA below 2048 bits", jwstest.Sign(t, "RS256", small, nil, claims), small.Public(), ErrKeyMismatch},
		{"alg none", unsigned(t, "none", claims), k.p256.Public(), ErrUnsupportedAlg},
		{"HS256", hmacToken(t, claims), k.rsa.Public(), ErrUnsupportedAlg},
		{"wrong key same type", jwstest.Sign(t, "ES256", k.p256, nil, claims), mustP256(t).Public(), ErrInvalidSignature},
		{"RS256 header but PS256 signature", relabel(t, jwstest.Sign(t, "PS256", k.rsa, nil, claims), "RS256"), k.rsa.Public(), ErrInvalidSignature},
		{"ok", jwstest.Sign(t, "PS384", k.rsa, nil, claims), k.rsa.Public(), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := Parse(c.token)
			if err != nil {
				t.Fatal(err)
			}
			err = tok.Verify(c.key)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func unsigned(t testing.TB, alg string, claims map[string]any) string {
	hb, _ := json.Marshal(map[string]any{"alg": alg})
	cb, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb) + "."
}

// hmacToken is the classic confusion attack: HS256 keyed with public key
// bytes. Only its header matters here.
func hmacToken(t testing.TB, claims map[string]any) string {
	return unsigned(t, "HS256", claims) + "c2ln"
}

func relabel(t testing.TB, token, alg string) string {
	parts := strings.Split(token, ".")
	hb, _ := json.Marshal(map[string]any{"alg": alg})
	parts[0] = base64.RawURLEncoding.EncodeToString(hb)
	// The signature was made over the old header: re-sign is not possible
	// without the key, so the check must fail at signature time.
	return strings.Join(parts, ".")
}

func TestParseMalformed(t *testing.T) {
	good := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256"}`))
	cases := map[string]string{
		"empty":           "",
		"two parts":       good + ".e30",
		"four parts":      good + ".e30.c2ln.x",
		"bad header b64":  "!!!.e30.c2ln",
		"padded header":   good + "=.e30.c2ln",
		"bad payload":     good + ".*.c2ln",
		"bad sig":         good + ".e30.*",
		"header not json": base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.c2ln",
		"no alg":          base64.RawURLEncoding.EncodeToString([]byte(`{"kid":"a"}`)) + ".e30.c2ln",
		"crit":            base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","crit":["b64"]}`)) + ".e30.c2ln",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(tok); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := Parse(good + ".e30.c2ln"); err != nil {
		t.Fatalf("good token: %v", err)
	}
}

func TestClaimsAndExp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name    string
		payload string
		wantErr error
	}{
		{"valid", `{"exp":1800000100}`, nil},
		{"within leeway", `{"exp":1799999950}`, nil},
		{"expired beyond leeway", `{"exp":1799999900}`, ErrExpired},
		{"missing exp", `{"iat":1}`, ErrMissingExp},
		{"string exp", `{"exp":"1800000100"}`, ErrMissingExp},
		{"not an object", `[1]`, ErrMalformed},
		{"null", `null`, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := &Token{Payload: []byte(c.payload)}
			claims, err := tok.Claims()
			if err == nil {
				err = CheckExp(claims, now, DefaultLeeway)
			}
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestParseJWK(t *testing.T) {
	k := newKeys(t)
	mk := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	bad := jwstest.JWK(k.p256.Public(), "ES256", "a")
	bad["y"] = bad["x"] // not on the curve
	short := jwstest.JWK(k.p256.Public(), "ES256", "a")
	short["x"] = "AQ"
	cases := []struct {
		name string
		data []byte
		want crypto.PublicKey
	}{
		{"P-256", mk(jwstest.JWK(k.p256.Public(), "ES256", "a")), k.p256.Public()},
		{"P-384", mk(jwstest.JWK(k.p384.Public(), "ES384", "a")), k.p384.Public()},
		{"P-521", mk(jwstest.JWK(k.p521.Public(), "ES512", "a")), k.p521.Public()},
		{"RSA", mk(jwstest.JWK(k.rsa.Public(), "RS256", "a")), k.rsa.Public()},
		{"Ed25519", mk(jwstest.JWK(k.ed.Public(), "EdDSA", "a")), k.ed.Public()},
		{"point not on curve", mk(bad), nil},
		{"short coordinate", mk(short), nil},
		{"oct", []byte(`{"kty":"oct","k":"c2VjcmV0"}`), nil},
		{"X25519", []byte(`{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`), nil},
		{"secp256k1", []byte(`{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}`), nil},
		{"RSA no e", []byte(`{"kty":"RSA","n":"AQAB"}`), nil},
		// A huge modulus would make every verification cost seconds.
		{"RSA modulus over 8192 bits", []byte(`{"kty":"RSA","e":"AQAB","n":"` + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 8192/8+1)) + `"}`), nil},
		{"not json", []byte(`{`), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := ParseJWK(c.data)
			if c.want == nil {
				if err == nil {
					t.Fatal("expected an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !KeysEqual(j.Key, c.want) || j.Kid != "a" {
				t.Fatalf("wrong key/kid: %+v", j)
			}
		})
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	k := newKeys(t)
	pkixPEM := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.p256.Public(), k.p256)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want crypto.PublicKey
	}{
		{"EC", pkixPEM(k.p256.Public()), k.p256.Public()},
		{"RSA", pkixPEM(k.rsa.Public()), k.rsa.Public()},
		{"Ed25519", pkixPEM(k.ed.Public()), k.ed.Public()},
		{"PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}), k.rsa.Public()},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), k.p256.Public()},
		{"skips other blocks", append(pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}}), pkixPEM(k.ed.Public())...), k.ed.Public()},
		{"garbage", []byte("hello"), nil},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParsePublicKeyPEM(c.data)
			if c.want == nil {
				if err == nil {
					t.Fatal("expected an error")
				}
				return
			}
			if err != nil || !KeysEqual(got, c.want) {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestDecodeX5c(t *testing.T) {
	der := []byte{0xfb, 0xff, 0x01, 0x02, 0x03}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(der),
		base64.RawURLEncoding.EncodeToString(der),
		base64.URLEncoding.EncodeToString(der),
		"+/8B\nAgM=",
	} {
		got, err := DecodeX5c(s)
		if err != nil || string(got) != string(der) {
			t.Fatalf("%q: got %x, %v", s, got, err)
		}
	}
	if _, err := DecodeX5c("***"); err == nil {
		t.Fatal("expected an error")
	}
}

func TestFetchSchemes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, uri := range []string{p, "file://" + p, "file://localhost" + p} {
		if b, err := Fetch(ctx, nil, uri); err != nil || string(b) != "data" {
			t.Fatalf("%s: %q %v", uri, b, err)
		}
	}
	for _, uri := range []string{"http://example.com/k", "ftp://x/y", "file://host" + p, "", filepath.Join(dir, "missing")} {
		if _, err := Fetch(ctx, nil, uri); err == nil {
			t.Fatalf("%s: expected an error", uri)
		}
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxDocumentSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, nil, big); err == nil {
		t.Fatal("oversized document accepted")
	}
}

func jwksJSON(t testing.TB, keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeySetHTTPSAndDiscovery(t *testing.T) {
	k := newKeys(t)
	set := jwksJSON(t, jwstest.JWK(k.p256.Public(), "ES256", "k1"), map[string]any{"kty": "oct", "k": "AA", "kid": "sym"})
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	mux.HandleFunc("/direct", func(w http.ResponseWriter, _ *http.Request) { w.Write(set) })
	mux.HandleFunc("/idp/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + "/idp", "jwks_uri": srv.URL + "/certs"})
	})
	mux.HandleFunc("/certs", func(w http.ResponseWriter, _ *http.Request) { w.Write(set) })
	mux.HandleFunc("/plain/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"jwks_uri": "http://insecure/certs"})
	})
	ctx := context.Background()
	for _, path := range []string{"/direct", "/idp", "/idp/"} {
		ks, err := NewKeySet(ctx, srv.URL+path, KeySetOptions{HTTPClient: srv.Client()})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		j, err := ks.Lookup(ctx, "k1")
		if err != nil || !KeysEqual(j.Key, k.p256.Public()) {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := ks.Lookup(ctx, "sym"); !errors.Is(err, ErrUnknownKid) {
			t.Fatalf("symmetric key must be skipped, got %v", err)
		}
	}
	for _, path := range []string{"/nothing", "/plain"} {
		if _, err := NewKeySet(ctx, srv.URL+path, KeySetOptions{HTTPClient: srv.Client()}); err == nil {
			t.Fatalf("%s: expected an error", path)
		}
	}
	// The default client does not trust the test server's certificate.
	if _, err := NewKeySet(ctx, srv.URL+"/direct", KeySetOptions{}); err == nil {
		t.Fatal("untrusted TLS certificate accepted")
	}
}

func TestKeySetRefresh(t *testing.T) {
	k := newKeys(t)
	k2 := mustP256(t)
	var hits atomic.Int32
	var serveBoth, down atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		keys := []map[string]any{jwstest.JWK(k.p256.Public(), "ES256", "old")}
		if serveBoth.Load() {
			keys = append(keys, jwstest.JWK(k2.Public(), "ES256", "new"))
		}
		w.Write(jwksJSON(t, keys...))
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	ctx := context.Background()
	ks, err := NewKeySet(ctx, srv.URL, KeySetOptions{HTTPClient: srv.Client(), Now: clock, MinRefreshInterval: 30 * time.Second, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("hits %d", hits.Load())
	}
	// Unknown kid right after loading: rate-limited, no fetch.
	if _, err := ks.Lookup(ctx, "new"); !errors.Is(err, ErrUnknownKid) {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("refetched within the interval: %d", hits.Load())
	}
	serveBoth.Store(true)
	now = now.Add(31 * time.Second)
	if j, err := ks.Lookup(ctx, "new"); err != nil || !KeysEqual(j.Key, k2.Public()) {
		t.Fatalf("after refresh: %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("hits %d", hits.Load())
	}
	// Known kid: served from cache.
	for range 5 {
		if _, err := ks.Lookup(ctx, "old"); err != nil {
			t.Fatal(err)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("cached lookups fetched: %d", hits.Load())
	}
	// Repeated unknown kids inside the interval cost one fetch at most.
	now = now.Add(31 * time.Second)
	for range 5 {
		ks.Lookup(ctx, "missing")
	}
	if hits.Load() != 3 {
		t.Fatalf("hits %d", hits.Load())
	}
	// Stale set: refetched even for a known kid; a failing server keeps the old keys.
	now = now.Add(2 * time.Hour)
	down.Store(true)
	if _, err := ks.Lookup(ctx, "old"); err != nil {
		t.Fatalf("stale key must survive a failed refresh: %v", err)
	}
	if hits.Load() != 5 { // the set URL, then the OpenID discovery fallback
		t.Fatalf("hits %d", hits.Load())
	}
}

func FuzzParse(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(jwstest.Sign(f, "ES256", k, map[string]any{"kid": "x"}, map[string]any{"exp": 1}))
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		if tok.Header.Alg == "" {
			t.Fatal("parsed a token without alg")
		}
		_ = tok.Verify(k.Public())
		_, _ = tok.Claims()
	})
}

func TestRawToASN1(t *testing.T) {
	cases := []struct{ r, s string }{
		{"01", "02"},
		{"0000ff", "7f"},
		{"80" + strings.Repeat("11", 31), "00" + strings.Repeat("ff", 31)},
		{strings.Repeat("ff", 66), strings.Repeat("81", 66)}, // P-521 size: long-form length
		{"00", "00"},
	}
	for _, c := range cases {
		r, _ := hexDecode(c.r)
		s, _ := hexDecode(c.s)
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
		if err != nil {
			t.Fatal(err)
		}
		if got := rawToASN1(nil, r, s); string(got) != string(want) {
			t.Errorf("r=%s s=%s: got %x, want %x", c.r, c.s, got, want)
		}
	}
}

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }
