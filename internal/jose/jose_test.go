package jose

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/sigil-attestation/sigil/protocol"
)

var testRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := testRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type vector struct {
	ClientScalar    string            `json:"client_scalar"`
	EphemeralScalar string            `json:"ephemeral_scalar"`
	CEK             string            `json:"cek"`
	IV              string            `json:"iv"`
	Plaintext       string            `json:"plaintext"`
	Z               string            `json:"z"`
	KEK             string            `json:"kek"`
	Header          string            `json:"header"`
	JWE             json.RawMessage   `json:"jwe"`
	Response        protocol.Response `json:"-"`
}

func loadVector(t *testing.T) vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "ecdh-es-p256-vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(v.JWE, &v.Response); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWorkedVectorDecrypt(t *testing.T) {
	v := loadVector(t)
	client, err := ecdh.P256().NewPrivateKey(mustHex(t, v.ClientScalar))
	if err != nil {
		t.Fatal(err)
	}
	eph, err := ecdh.P256().NewPrivateKey(mustHex(t, v.EphemeralScalar))
	if err != nil {
		t.Fatal(err)
	}
	z, err := client.ECDH(eph.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(z); got != v.Z {
		t.Fatalf("Z = %s, want %s", got, v.Z)
	}
	if got := hex.EncodeToString(concatKDF(z)); got != v.KEK {
		t.Fatalf("KEK = %s, want %s", got, v.KEK)
	}
	// Decrypt accepts the ECDH and the ECDSA form of the client key.
	ecdsaKey, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(t, v.ClientScalar))
	if err != nil {
		t.Fatal(err)
	}
	for name, priv := range map[string]crypto.PrivateKey{"ecdh": client, "ecdsa": ecdsaKey} {
		got, err := Decrypt(priv, &v.Response)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != v.Plaintext {
			t.Fatalf("%s: plaintext %q, want %q", name, got, v.Plaintext)
		}
	}
}

func TestWorkedVectorEncrypt(t *testing.T) {
	v := loadVector(t)
	client, err := ecdh.P256().NewPrivateKey(mustHex(t, v.ClientScalar))
	if err != nil {
		t.Fatal(err)
	}
	key, err := TeePubKeyOf(client)
	if err != nil {
		t.Fatal(err)
	}
	// Encrypt reads the ephemeral scalar, the CEK and the IV from rand.
	stream := bytes.Join([][]byte{mustHex(t, v.EphemeralScalar), mustHex(t, v.CEK), mustHex(t, v.IV)}, nil)
	resp, err := Encrypt(bytes.NewReader(stream), key, []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, v.JWE); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("Encrypt =\n%s\nwant\n%s", got, want.Bytes())
	}
	header, err := decodeB64(resp.Protected)
	if err != nil || string(header) != v.Header {
		t.Fatalf("header = %s (%v), want %s", header, err, v.Header)
	}

	// The internal helper with explicit inputs gives the same bytes.
	eph, err := ecdh.P256().NewPrivateKey(mustHex(t, v.EphemeralScalar))
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := encryptECDH(client.PublicKey(), curveP256, eph, mustHex(t, v.CEK), mustHex(t, v.IV), []byte(v.Plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if *resp2 != *resp {
		t.Fatalf("encryptECDH = %+v, want %+v", resp2, resp)
	}
}

func TestEncryptShortRandom(t *testing.T) {
	priv, err := GenerateTeeKey(rand.Reader, "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := TeePubKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Encrypt(bytes.NewReader(make([]byte, 40)), key, []byte("x")); err == nil {
		t.Fatal("Encrypt with an exhausted random source succeeded")
	}
}

type combo struct {
	name     string
	priv     crypto.PrivateKey
	key      protocol.TeePubKey
	header   string // expected header prefix (EC: up to the coordinates)
	ekLen    int
	jwkAlg   gojose.KeyAlgorithm
	ephCoord int
}

func combos(t *testing.T) []combo {
	t.Helper()
	var out []combo
	rk := rsaKey(t)
	rsaPub, err := TeePubKeyOf(rk)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, combo{"RSA-OAEP-256", rk, rsaPub, `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, 256, gojose.RSA_OAEP_256, 0})
	rsa15 := rsaPub
	rsa15.Alg = "RSA1_5"
	out = append(out, combo{"RSA1_5", rk, rsa15, `{"alg":"RSA1_5","enc":"A256GCM"}`, 256, gojose.RSA1_5, 0})
	for _, c := range []struct {
		alg, crv string
		size     int
	}{{TeeKeyP256, "P-256", 32}, {TeeKeyP521, "P-521", 66}} {
		priv, err := GenerateTeeKey(rand.Reader, c.alg)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := TeePubKeyOf(priv)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, combo{"ECDH-ES-" + c.crv, priv, pub,
			`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"` + c.crv + `","kty":"EC","x":"`, 40, gojose.ECDH_ES_A256KW, c.size})
	}
	return out
}

func TestRoundTripAndFormat(t *testing.T) {
	plaintext := bytes.Repeat([]byte("secret<>&\x00"), 30)
	for _, c := range combos(t) {
		t.Run(c.name, func(t *testing.T) {
			resp, err := Encrypt(rand.Reader, c.key, plaintext)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decrypt(c.priv, resp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Fatalf("round trip mismatch")
			}

			header, err := decodeB64(resp.Protected)
			if err != nil {
				t.Fatal(err)
			}
			if c.ephCoord == 0 {
				if string(header) != c.header {
					t.Fatalf("header %s, want %s", header, c.header)
				}
			} else {
				if !strings.HasPrefix(string(header), c.header) {
					t.Fatalf("header %s, want prefix %s", header, c.header)
				}
				var h struct {
					EPK struct{ X, Y string } `json:"epk"`
				}
				if err := json.Unmarshal(header, &h); err != nil {
					t.Fatal(err)
				}
				x, _ := decodeB64(h.EPK.X)
				y, _ := decodeB64(h.EPK.Y)
				if len(x) != c.ephCoord || len(y) != c.ephCoord {
					t.Fatalf("epk coordinates %d/%d bytes, want %d", len(x), len(y), c.ephCoord)
				}
				want := c.header + h.EPK.X + `","y":"` + h.EPK.Y + `"}}`
				if string(header) != want {
					t.Fatalf("header %s, want %s", header, want)
				}
			}
			for name, tc := range map[string]struct {
				s string
				n int
			}{"encrypted_key": {resp.EncryptedKey, c.ekLen}, "iv": {resp.IV, 12}, "tag": {resp.Tag, 16}, "ciphertext": {resp.Ciphertext, len(plaintext)}} {
				b, err := decodeB64(tc.s)
				if err != nil || len(b) != tc.n {
					t.Errorf("%s: %d bytes (%v), want %d", name, len(b), err, tc.n)
				}
			}
			js, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			wantPrefix := `{"protected":"` + resp.Protected + `","encrypted_key":"` + resp.EncryptedKey + `","iv":"` + resp.IV +
				`","ciphertext":"` + resp.Ciphertext + `","tag":"` + resp.Tag + `"}`
			if string(js) != wantPrefix {
				t.Fatalf("JSON %s, want %s", js, wantPrefix)
			}
		})
	}
}

// TestGoJoseDecrypts checks Encrypt's output with an independent JOSE
// implementation.
func TestGoJoseDecrypts(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, 256)
	for _, c := range combos(t) {
		t.Run(c.name, func(t *testing.T) {
			resp, err := Encrypt(rand.Reader, c.key, secret)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := gojose.ParseEncryptedJSON(string(js),
				[]gojose.KeyAlgorithm{c.jwkAlg}, []gojose.ContentEncryption{gojose.A256GCM})
			if err != nil {
				t.Fatal(err)
			}
			got, err := obj.Decrypt(c.priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatal("go-jose decrypted something else")
			}
		})
	}
}

// TestDecryptGoJoseOutput decrypts JWEs produced by go-jose.
func TestDecryptGoJoseOutput(t *testing.T) {
	for _, c := range combos(t) {
		if c.name == "RSA1_5" {
			continue // go-jose no longer encrypts with RSA1_5 by default
		}
		t.Run(c.name, func(t *testing.T) {
			var pub any
			switch k := c.priv.(type) {
			case *rsa.PrivateKey:
				pub = &k.PublicKey
			case *ecdsa.PrivateKey:
				pub = &k.PublicKey
			}
			enc, err := gojose.NewEncrypter(gojose.A256GCM, gojose.Recipient{Algorithm: c.jwkAlg, Key: pub}, nil)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := enc.Encrypt([]byte("from go-jose"))
			if err != nil {
				t.Fatal(err)
			}
			var resp protocol.Response
			if err := json.Unmarshal([]byte(obj.FullSerialize()), &resp); err != nil {
				t.Fatal(err)
			}
			// Like the Rust client, Decrypt authenticates the re-serialised
			// header. go-jose writes epk members as {"kty","crv",...}, not in
			// key order, so its ECDH-ES JWEs fail exactly as they would
			// with the Rust client; its RSA headers are already canonical.
			header, err := decodeB64(resp.Protected)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseHeader(header)
			if err != nil {
				t.Fatal(err)
			}
			canonical := bytes.Equal(h.aad, header)
			t.Logf("go-jose header %s (canonical: %v)", header, canonical)
			got, err := Decrypt(c.priv, &resp)
			if !canonical {
				if !errors.Is(err, ErrInvalidJWE) {
					t.Fatalf("Decrypt of a non-canonical header = %q, %v; want ErrInvalidJWE", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "from go-jose" {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestAAD(t *testing.T) {
	tests := []struct{ header, want string }{
		{`{"alg":"fakealg","enc":"fakeenc"}`, "eyJhbGciOiJmYWtlYWxnIiwiZW5jIjoiZmFrZWVuYyJ9"},
		{`{ "enc" : "fakeenc", "alg" : "fakealg" }`, "eyJhbGciOiJmYWtlYWxnIiwiZW5jIjoiZmFrZWVuYyJ9"},
	}
	for _, tt := range tests {
		h, err := parseHeader([]byte(tt.header))
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeB64(h.aad); got != tt.want {
			t.Errorf("AAD(%s) = %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestHeaderReserialisation(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"zip":"DEF","epk":{"y":"b","x":"a","kty":"EC","crv":"P-256"},"enc":"A256GCM","alg":"ECDH-ES+A256KW"}`,
			`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"a","y":"b"},"zip":"DEF"}`},
		{`{"alg":"a/b<c>","enc":"\u00e9\u0001","n":[1,-2,1.0,1e2,-0,0.5,1e-7,1e16,123.456,18446744073709551616,true,null]}`,
			"{\"alg\":\"a/b<c>\",\"enc\":\"\u00e9\\u0001\",\"n\":[1,-2,1.0,100.0,-0.0,0.5,1e-7,1e16,123.456,1.8446744073709552e19,true,null]}"},
		{"{\"alg\":\"x\",\"enc\":\"y\",\"\uFB33\":1,\"\U0001F600\":2}", "{\"alg\":\"x\",\"enc\":\"y\",\"\uFB33\":1,\"\U0001F600\":2}"},
	}
	for _, tt := range tests {
		h, err := parseHeader([]byte(tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if string(h.aad) != tt.want {
			t.Errorf("reserialised %s\n got %s\nwant %s", tt.in, h.aad, tt.want)
		}
	}
	for _, bad := range []string{`[]`, `null`, `{"alg":"x"}`, `{"enc":"y"}`, `{"alg":1,"enc":"y"}`, `{"alg":"x","enc":"y","alg":"z"}`, `{"alg":"x","enc":"y"} x`} {
		if _, err := parseHeader([]byte(bad)); err == nil {
			t.Errorf("parseHeader(%s) succeeded", bad)
		}
	}
}

// TestDecryptRecomputesAAD mirrors the Rust client: the AAD is the
// re-serialised header, not the received protected string, and enc and aad
// are ignored.
func TestDecryptRecomputesAAD(t *testing.T) {
	rk := rsaKey(t)
	cek := bytes.Repeat([]byte{7}, 32)
	iv := make([]byte, 12)
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rk.PublicKey, cek, nil)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(protectedJSON, aadJSON string) *protocol.Response {
		t.Helper()
		r, err := sealContent(aadJSON, ek, cek, iv, []byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		r.Protected = encodeB64([]byte(protectedJSON))
		return r
	}
	canonical := `{"alg":"RSA-OAEP-256","enc":"A128CBC-HS256","kid":"k"}`
	reordered := `{"kid":"k","enc":"A128CBC-HS256","alg":"RSA-OAEP-256"}`

	// Sealed with the re-serialised form: accepted, whatever the order
	// received, the enc value or an aad member.
	r := seal(reordered, canonical)
	r.AAD = "ignored"
	if got, err := Decrypt(rk, r); err != nil || string(got) != "payload" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	// Sealed with the received (non-canonical) string as AAD, as RFC 7516
	// says: the Rust client, and so Decrypt, fails.
	if _, err := Decrypt(rk, seal(reordered, reordered)); !errors.Is(err, ErrInvalidJWE) {
		t.Fatalf("Decrypt with RFC AAD of a reordered header = %v, want ErrInvalidJWE", err)
	}
}

func TestAESKeyWrapRFC3394(t *testing.T) {
	kek := mustHex(t, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	data := mustHex(t, "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want := mustHex(t, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	got, err := aesKeyWrap(kek, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wrap = %x, want %x", got, want)
	}
	back, err := aesKeyUnwrap(kek, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("unwrap = %x, want %x", back, data)
	}
	for i := range want {
		bad := bytes.Clone(want)
		bad[i] ^= 0x80
		if _, err := aesKeyUnwrap(kek, bad); !errors.Is(err, errKeyUnwrap) {
			t.Fatalf("unwrap with byte %d flipped: %v", i, err)
		}
	}
	if _, err := aesKeyUnwrap(kek, want[:20]); err == nil {
		t.Fatal("unwrap of a 20-byte input succeeded")
	}
	if _, err := aesKeyWrap(kek, data[:12]); err == nil {
		t.Fatal("wrap of 12 bytes succeeded")
	}
}

func TestPublicKeyRejects(t *testing.T) {
	p256, err := GenerateTeeKey(rand.Reader, TeeKeyP256)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := TeePubKeyOf(p256)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := TeePubKeyOf(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	xBytes, _ := decodeB64(ec.X)
	yBytes, _ := decodeB64(ec.Y)
	offCurveY := bytes.Clone(yBytes)
	offCurveY[31] ^= 1

	mod := func(f func(*protocol.TeePubKey)) func(protocol.TeePubKey) protocol.TeePubKey {
		return func(k protocol.TeePubKey) protocol.TeePubKey { f(&k); return k }
	}
	tests := []struct {
		name string
		base protocol.TeePubKey
		edit func(protocol.TeePubKey) protocol.TeePubKey
	}{
		{"RSA-OAEP (SHA-1)", rsaPub, mod(func(k *protocol.TeePubKey) { k.Alg = "RSA-OAEP" })},
		{"RSA with EC alg", rsaPub, mod(func(k *protocol.TeePubKey) { k.Alg = "ECDH-ES+A256KW" })},
		{"RSA 1024", rsaPub, mod(func(k *protocol.TeePubKey) {
			k.N = encodeB64(small.N.Bytes())
		})},
		{"RSA even modulus", rsaPub, mod(func(k *protocol.TeePubKey) {
			n := new(big.Int).SetBytes(rsaKey(t).N.Bytes())
			k.N = encodeB64(n.Add(n, big.NewInt(1)).Bytes())
		})},
		{"RSA exponent 1", rsaPub, mod(func(k *protocol.TeePubKey) { k.E = "AQ" })},
		{"RSA even exponent", rsaPub, mod(func(k *protocol.TeePubKey) { k.E = "AQAC" })},
		{"RSA huge exponent", rsaPub, mod(func(k *protocol.TeePubKey) { k.E = encodeB64([]byte{1, 0, 0, 0, 1}) })},
		{"RSA padded n", rsaPub, mod(func(k *protocol.TeePubKey) { k.N = k.N + "=" })},
		{"RSA standard base64 n", rsaPub, mod(func(k *protocol.TeePubKey) {
			k.N = strings.NewReplacer("-", "+", "_", "/").Replace(k.N)
			if !strings.ContainsAny(k.N, "+/") {
				k.N += "+"
			}
		})},
		{"EC alg ECDH-ES", ec, mod(func(k *protocol.TeePubKey) { k.Alg = "ECDH-ES" })},
		{"EC alg ECDH-ES+A128KW", ec, mod(func(k *protocol.TeePubKey) { k.Alg = "ECDH-ES+A128KW" })},
		{"EC curve P-384", ec, mod(func(k *protocol.TeePubKey) { k.Crv = "P-384" })},
		{"EC curve mismatch P-521", ec, mod(func(k *protocol.TeePubKey) { k.Crv = "P-521" })},
		{"EC short x", ec, mod(func(k *protocol.TeePubKey) { k.X = encodeB64(xBytes[1:]) })},
		{"EC short y", ec, mod(func(k *protocol.TeePubKey) { k.Y = encodeB64(yBytes[:31]) })},
		{"EC long x", ec, mod(func(k *protocol.TeePubKey) { k.X = encodeB64(append([]byte{0}, xBytes...)) })},
		{"EC off curve", ec, mod(func(k *protocol.TeePubKey) { k.Y = encodeB64(offCurveY) })},
		{"EC zero point", ec, mod(func(k *protocol.TeePubKey) {
			k.X, k.Y = encodeB64(make([]byte, 32)), encodeB64(make([]byte, 32))
		})},
		{"EC padded x", ec, mod(func(k *protocol.TeePubKey) { k.X += "=" })},
		{"EC bad base64", ec, mod(func(k *protocol.TeePubKey) { k.X = "!!" + k.X[2:] })},
		{"AKP", protocol.TeePubKey{Kty: "AKP", Alg: "ML-KEM-768+A192KW", Pub: "AAAA"}, mod(func(*protocol.TeePubKey) {})},
		{"oct", protocol.TeePubKey{Kty: "oct", Alg: "A256KW"}, mod(func(*protocol.TeePubKey) {})},
		{"OKP", protocol.TeePubKey{Kty: "OKP", Crv: "X25519", Alg: "ECDH-ES+A256KW", X: encodeB64(make([]byte, 32))}, mod(func(*protocol.TeePubKey) {})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.edit(tt.base)
			if _, err := PublicKey(key); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("PublicKey = %v, want ErrUnsupportedKey", err)
			}
			if _, err := Encrypt(rand.Reader, key, []byte("x")); !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("Encrypt = %v, want ErrUnsupportedKey", err)
			}
		})
	}
	// The unedited keys are accepted.
	for _, k := range []protocol.TeePubKey{ec, rsaPub} {
		if _, err := PublicKey(k); err != nil {
			t.Fatalf("PublicKey(%+v): %v", k, err)
		}
	}
}

func TestDecryptRejects(t *testing.T) {
	v := loadVector(t)
	client, err := ecdh.P256().NewPrivateKey(mustHex(t, v.ClientScalar))
	if err != nil {
		t.Fatal(err)
	}
	p521, err := GenerateTeeKey(rand.Reader, TeeKeyP521)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		b, _ := decodeB64(s)
		b[len(b)-1] ^= 1
		return encodeB64(b)
	}
	headerVariant := func(h string) string { return encodeB64([]byte(h)) }
	base := v.Response
	tests := []struct {
		name string
		priv crypto.PrivateKey
		edit func(*protocol.Response)
		err  error
	}{
		{"tampered tag", client, func(r *protocol.Response) { r.Tag = flip(r.Tag) }, ErrInvalidJWE},
		{"tampered ciphertext", client, func(r *protocol.Response) { r.Ciphertext = flip(r.Ciphertext) }, ErrInvalidJWE},
		{"tampered encrypted_key", client, func(r *protocol.Response) { r.EncryptedKey = flip(r.EncryptedKey) }, ErrInvalidJWE},
		{"tampered iv", client, func(r *protocol.Response) { r.IV = flip(r.IV) }, ErrInvalidJWE},
		{"tampered protected (extra member)", client, func(r *protocol.Response) {
			r.Protected = headerVariant(strings.TrimSuffix(v.Header, "}") + `,"kid":"x"}`)
		}, ErrInvalidJWE},
		{"tampered protected (epk)", client, func(r *protocol.Response) {
			r.Protected = headerVariant(strings.Replace(v.Header, `"x":"H`, `"x":"I`, 1))
		}, ErrInvalidJWE},
		{"padded protected", client, func(r *protocol.Response) { r.Protected += "=" }, ErrInvalidJWE},
		{"padded encrypted_key", client, func(r *protocol.Response) { r.EncryptedKey += "==" }, ErrInvalidJWE},
		{"padded iv", client, func(r *protocol.Response) { r.IV = "AAECAwQFBgcICQoL=" }, ErrInvalidJWE},
		{"padded ciphertext", client, func(r *protocol.Response) { r.Ciphertext += "=" }, ErrInvalidJWE},
		{"padded tag", client, func(r *protocol.Response) { r.Tag += "==" }, ErrInvalidJWE},
		{"standard base64 alphabet", client, func(r *protocol.Response) { r.EncryptedKey = strings.ReplaceAll(r.EncryptedKey, "-", "+") }, ErrInvalidJWE},
		{"line break", client, func(r *protocol.Response) { r.Ciphertext = r.Ciphertext[:4] + "\n" + r.Ciphertext[4:] }, ErrInvalidJWE},
		{"short iv", client, func(r *protocol.Response) { r.IV = encodeB64(make([]byte, 16)) }, ErrInvalidJWE},
		{"short tag", client, func(r *protocol.Response) { r.Tag = r.Tag[:10] }, ErrInvalidJWE},
		{"unknown alg", client, func(r *protocol.Response) {
			r.Protected = headerVariant(strings.Replace(v.Header, "ECDH-ES+A256KW", "ECDH-ES+A128KW", 1))
		}, ErrInvalidJWE},
		{"direct ECDH-ES", client, func(r *protocol.Response) {
			r.Protected = headerVariant(strings.Replace(v.Header, "ECDH-ES+A256KW", "ECDH-ES", 1))
		}, ErrInvalidJWE},
		{"no epk", client, func(r *protocol.Response) {
			r.Protected = headerVariant(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM"}`)
		}, ErrInvalidJWE},
		{"epk x not a string", client, func(r *protocol.Response) {
			r.Protected = headerVariant(`{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","x":1,"y":"a"}}`)
		}, ErrInvalidJWE},
		{"missing enc", client, func(r *protocol.Response) {
			r.Protected = headerVariant(`{"alg":"ECDH-ES+A256KW","epk":{}}`)
		}, ErrInvalidJWE},
		{"header not JSON", client, func(r *protocol.Response) { r.Protected = headerVariant(`{"alg"`) }, ErrInvalidJWE},
		{"epk on another curve", p521, func(*protocol.Response) {}, ErrInvalidJWE},
		{"RSA key for ECDH JWE", rsaKey(t), func(*protocol.Response) {}, ErrUnsupportedKey},
		{"ed25519 key", ed25519.NewKeyFromSeed(make([]byte, 32)), func(*protocol.Response) {}, ErrUnsupportedKey},
		{"EC key for RSA JWE", client, func(r *protocol.Response) {
			r.Protected = headerVariant(`{"alg":"RSA-OAEP-256","enc":"A256GCM"}`)
		}, ErrUnsupportedKey},
		{"encrypted_key too long", client, func(r *protocol.Response) {
			b, _ := decodeB64(r.EncryptedKey)
			r.EncryptedKey = encodeB64(append(b, make([]byte, 8)...))
		}, ErrInvalidJWE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.edit(&r)
			got, err := Decrypt(tt.priv, &r)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Decrypt = %q, %v; want %v", got, err, tt.err)
			}
		})
	}
	if _, err := Decrypt(client, nil); !errors.Is(err, ErrInvalidJWE) {
		t.Fatalf("Decrypt(nil) = %v", err)
	}
	// The untouched vector still decrypts, so the failures above are due to
	// the edits.
	if _, err := Decrypt(client, &base); err != nil {
		t.Fatal(err)
	}
}

func TestTeePubKeyOf(t *testing.T) {
	// Find a P-256 scalar whose public x has a leading zero byte: the JWK
	// must still carry 32 bytes.
	var priv *ecdh.PrivateKey
	scalar := make([]byte, 32)
	for i := 1; ; i++ {
		scalar[30], scalar[31] = byte(i>>8), byte(i)
		k, err := ecdh.P256().NewPrivateKey(scalar)
		if err != nil {
			t.Fatal(err)
		}
		if k.PublicKey().Bytes()[1] == 0 {
			priv = k
			break
		}
	}
	key, err := TeePubKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := decodeB64(key.X)
	if len(x) != 32 || x[0] != 0 {
		t.Fatalf("x = %x, want 32 bytes with a leading zero", x)
	}
	if key.Kty != "EC" || key.Crv != "P-256" || key.Alg != "ECDH-ES+A256KW" {
		t.Fatalf("key = %+v", key)
	}
	if _, err := PublicKey(key); err != nil {
		t.Fatal(err)
	}

	rk := rsaKey(t)
	rkey, err := TeePubKeyOf(rk)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := decodeB64(rkey.N)
	if rkey.Kty != "RSA" || rkey.Alg != "RSA-OAEP-256" || rkey.E != "AQAB" || len(n) != 256 {
		t.Fatalf("RSA key = %+v (n %d bytes)", rkey, len(n))
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TeePubKeyOf(p384); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("TeePubKeyOf(P-384) = %v", err)
	}
	if _, err := TeePubKeyOf(ed25519.NewKeyFromSeed(make([]byte, 32))); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("TeePubKeyOf(ed25519) = %v", err)
	}
}

func TestGenerateTeeKey(t *testing.T) {
	tests := []struct {
		alg  string
		want string
	}{
		{"", "P-256"},
		{TeeKeyP256, "P-256"},
		{TeeKeyP521, "P-521"},
		{TeeKeyRSA, "RSA"},
	}
	for _, tt := range tests {
		priv, err := GenerateTeeKey(rand.Reader, tt.alg)
		if err != nil {
			t.Fatalf("%q: %v", tt.alg, err)
		}
		switch k := priv.(type) {
		case *ecdsa.PrivateKey:
			if k.Curve.Params().Name != tt.want {
				t.Errorf("%q: curve %s", tt.alg, k.Curve.Params().Name)
			}
		case *rsa.PrivateKey:
			if tt.want != "RSA" || k.N.BitLen() != 2048 || k.E != 65537 {
				t.Errorf("%q: RSA %d bits e=%d", tt.alg, k.N.BitLen(), k.E)
			}
		default:
			t.Errorf("%q: %T", tt.alg, priv)
		}
	}
	if _, err := GenerateTeeKey(rand.Reader, "ML-KEM-768+A192KW"); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("ML-KEM: %v", err)
	}
}

func TestPrivateKeyPEM(t *testing.T) {
	p256, err := GenerateTeeKey(rand.Reader, TeeKeyP256)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := GenerateTeeKey(rand.Reader, TeeKeyP521)
	if err != nil {
		t.Fatal(err)
	}
	ecdhKey, err := p256.(*ecdsa.PrivateKey).ECDH()
	if err != nil {
		t.Fatal(err)
	}
	rk := rsaKey(t)
	tests := []struct {
		name    string
		priv    crypto.PrivateKey
		pemType string
	}{
		{"RSA", rk, "RSA PRIVATE KEY"},
		{"P-256", p256, "PRIVATE KEY"},
		{"P-521", p521, "PRIVATE KEY"},
		{"P-256 ecdh", ecdhKey, "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := MarshalPrivateKeyPEM(tt.priv)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte("\r")) {
				t.Fatal("CR in PEM")
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != tt.pemType {
				t.Fatalf("PEM type %v, want %s", block, tt.pemType)
			}
			back, err := ParsePrivateKeyPEM(data)
			if err != nil {
				t.Fatal(err)
			}
			want, err := TeePubKeyOf(tt.priv)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TeePubKeyOf(back)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("parsed key %+v, want %+v", got, want)
			}
		})
	}

	// Other encodings the parser accepts: SEC 1 EC and PKCS#8 RSA.
	sec1, err := x509.MarshalECPrivateKey(p256.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8RSA, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"SEC 1":      {Type: "EC PRIVATE KEY", Bytes: sec1},
		"PKCS#8 RSA": {Type: "PRIVATE KEY", Bytes: pkcs8RSA},
	} {
		if _, err := ParsePrivateKeyPEM(pem.EncodeToMemory(block)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Rejected: other curves and key types, garbage.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384PKCS8, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384SEC1, _ := x509.MarshalECPrivateKey(p384)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	for name, data := range map[string][]byte{
		"P-384 PKCS#8":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384PKCS8}),
		"P-384 SEC 1":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p384SEC1}),
		"Ed25519 PKCS#8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edPKCS8}),
		"garbage DER":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"not PEM":        []byte("hello"),
	} {
		if _, err := ParsePrivateKeyPEM(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := MarshalPrivateKeyPEM(p384); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("MarshalPrivateKeyPEM(P-384) = %v", err)
	}
}

func BenchmarkEncrypt(b *testing.B) {
	secret := bytes.Repeat([]byte{0x42}, 256)
	for _, alg := range []struct{ name, teeAlg string }{
		{"RSA-OAEP-256", TeeKeyRSA},
		{"ECDH-ES-P256", TeeKeyP256},
		{"ECDH-ES-P521", TeeKeyP521},
	} {
		b.Run(alg.name, func(b *testing.B) {
			priv, err := GenerateTeeKey(rand.Reader, alg.teeAlg)
			if err != nil {
				b.Fatal(err)
			}
			key, err := TeePubKeyOf(priv)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encrypt(rand.Reader, key, secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
