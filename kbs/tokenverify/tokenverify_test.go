package tokenverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws"
	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

func genP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ca is a certificate with its private key.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

// issue creates a certificate for pub signed by parent (self-signed when
// parent is nil, then signer must be pub's private key).
func issue(t testing.TB, name string, pub crypto.PublicKey, signer crypto.Signer, parent *ca, isCA bool, notBefore, notAfter time.Time) *ca {
	t.Helper()
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{Organization: []string{"CNCF"}, OrganizationalUnit: []string{"CoCo"}, CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	parentCert, parentKey := tmpl, signer
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: signer}
}

func newCA(t testing.TB, name string) *ca {
	k := genP256(t)
	return issue(t, name, k.Public(), k, nil, true, testNow.Add(-24*time.Hour), testNow.Add(365*24*time.Hour))
}

func writePEM(t testing.TB, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(t.TempDir(), "trust.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func x5c(certs ...*x509.Certificate) []any {
	out := make([]any, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// validFor is the lifetime of the test tokens, within DefaultMaxTokenLifetime.
const validFor = 4 * time.Minute

// claims returns EAR-like claims expiring at exp, issued validFor earlier
// (or now, when that would lie in the future).
func claims(exp time.Time) map[string]any {
	iat := exp.Add(-validFor)
	if iat.After(testNow) {
		iat = testNow
	}
	return map[string]any{
		"iss":     "CoCo-Attestation-Service",
		"iat":     iat.Unix(),
		"exp":     exp.Unix(),
		"submods": map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}},
	}
}

func headerJWK(pub crypto.PublicKey, alg string, chain []any) map[string]any {
	j := jwstest.JWK(pub, alg, "")
	if chain != nil {
		j["x5c"] = chain
	}
	return map[string]any{"typ": "JWT", "jwk": j}
}

func TestX5cScenarios(t *testing.T) {
	root := newCA(t, "root")
	otherRoot := newCA(t, "other-root")
	validFrom, validTo := testNow.Add(-time.Hour), testNow.Add(90*24*time.Hour)

	// Scenario: self-signed leaf that is its own trust anchor.
	selfKey := genP256(t)
	self := issue(t, "self", selfKey.Public(), selfKey, nil, false, validFrom, validTo)

	// Chain root → int1 → int2 → leaf.
	int1Key, int2Key, leafKey := genP256(t), genP256(t), genP256(t)
	int1 := issue(t, "int1", int1Key.Public(), int1Key, root, true, validFrom, validTo)
	int2 := issue(t, "int2", int2Key.Public(), int2Key, int1, true, validFrom, validTo)
	leaf := issue(t, "CoCo-AS", leafKey.Public(), leafKey, int2, false, validFrom, validTo)

	// RSA leaf directly under root.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf := issue(t, "rsa", rsaKey.Public(), rsaKey, root, false, validFrom, validTo)

	// P-384 leaf: Trustee only endorses RSA and EC P-256 keys.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Leaf := issue(t, "p384", p384.Public(), p384, root, false, validFrom, validTo)

	// Expired leaf under root.
	expKey := genP256(t)
	expLeaf := issue(t, "expired", expKey.Public(), expKey, root, false, testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))

	urlSafe := base64.URLEncoding.EncodeToString(leaf.cert.Raw)
	wrapped := []any{}
	for s := urlSafe; len(s) > 0; {
		n := min(64, len(s))
		wrapped = append(wrapped, s[:n])
		s = s[n:]
	}
	lineWrapped := strings.Join(func() []string {
		out := make([]string, len(wrapped))
		for i, w := range wrapped {
			out[i] = w.(string)
		}
		return out
	}(), "\n")

	exp := testNow.Add(validFor)
	cases := []struct {
		name    string
		trust   []*x509.Certificate
		token   string
		wantErr error // nil = success
	}{
		{"self-signed root ok", []*x509.Certificate{self.cert},
			jwstest.Sign(t, "ES256", selfKey, headerJWK(selfKey.Public(), "ES256", x5c(self.cert)), claims(exp)), nil},
		{"leaf differs from jwk", []*x509.Certificate{self.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(self.cert)), claims(exp)), ErrUntrustedKey},
		{"no x5c", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", nil), claims(exp)), ErrUntrustedKey},
		{"empty x5c", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", []any{}), claims(exp)), ErrUntrustedKey},
		{"wrong trust anchor", []*x509.Certificate{otherRoot.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert, int1.cert)), claims(exp)), ErrUntrustedKey},
		{"leaf + intermediates to trusted root", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert, int1.cert)), claims(exp)), nil},
		{"intermediates permuted, trust bundle shuffled", []*x509.Certificate{otherRoot.cert, root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int1.cert, int2.cert)), claims(exp)), nil},
		{"intermediates include a trusted cert", []*x509.Certificate{int1.cert, root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert, int1.cert, root.cert)), claims(exp)), nil},
		{"missing intermediate", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert)), claims(exp)), ErrUntrustedKey},
		{"url-safe, line-wrapped x5c", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", []any{lineWrapped, x5c(int2.cert)[0], x5c(int1.cert)[0]}), claims(exp)), nil},
		{"garbage x5c", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", []any{"***"}), claims(exp)), ErrUntrustedKey},
		{"RSA leaf", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "RS256", rsaKey, headerJWK(rsaKey.Public(), "RS256", x5c(rsaLeaf.cert)), claims(exp)), nil},
		{"P-384 not endorsable", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES384", p384, headerJWK(p384.Public(), "ES384", x5c(p384Leaf.cert)), claims(exp)), ErrUntrustedKey},
		{"expired leaf certificate", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", expKey, headerJWK(expKey.Public(), "ES256", x5c(expLeaf.cert)), claims(exp)), ErrUntrustedKey},
		{"forged signature (other key, endorsed jwk)", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", genP256(t), headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert, int1.cert)), claims(exp)), jws.ErrInvalidSignature},
		{"expired token", []*x509.Certificate{root.cert},
			jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert, int2.cert, int1.cert)), claims(testNow.Add(-2*time.Minute))), jws.ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := New(context.Background(), Config{TrustedCertsPaths: []string{writePEM(t, c.trust...)}}, Options{Now: fixedClock})
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(context.Background(), c.token)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("got %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got["iss"] != "CoCo-Attestation-Service" {
				t.Fatalf("claims %v", got)
			}
		})
	}
}

// The cached endorsement of a header JWK must not outlive the chain's
// validity window.
func TestX5cCacheHonoursValidity(t *testing.T) {
	root := newCA(t, "root")
	leafKey := genP256(t)
	leaf := issue(t, "leaf", leafKey.Public(), leafKey, root, false, testNow.Add(-time.Hour), testNow.Add(time.Hour))
	now := testNow
	v, err := New(context.Background(), Config{TrustedCertsPaths: []string{writePEM(t, root.cert)}, MaxTokenLifetime: 24 * time.Hour},
		Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "ES256", leafKey, headerJWK(leafKey.Public(), "ES256", x5c(leaf.cert)), claims(testNow.Add(24*time.Hour)))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if len(v.cache) != 1 {
		t.Fatalf("cache size %d", len(v.cache))
	}
	now = testNow.Add(2 * time.Hour) // past the leaf's NotAfter
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("expired chain accepted from cache: %v", err)
	}
}

func TestHeaderKeyCacheBounded(t *testing.T) {
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock, HeaderKeyCacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		k := genP256(t)
		tok := jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(validFor)))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		if len(v.cache) > 2 {
			t.Fatalf("cache grew to %d", len(v.cache))
		}
	}
}

func TestInsecureHeaderJWK(t *testing.T) {
	k := genP256(t)
	other := genP256(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(validFor)))
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := strings.Replace(string(payload), "affirming", "warning!!", 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tamperedPayload)) + "." + parts[2]
	noAlg := headerJWK(k.Public(), "", nil)
	noExp := claims(testNow)
	delete(noExp, "exp")

	cases := []struct {
		name    string
		token   string
		wantErr error // nil = success
	}{
		{"ok", good, nil},
		{"ok within exp leeway", jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(-30*time.Second))), nil},
		{"RSA PS256 ok", jwstest.Sign(t, "PS256", rsaKey, headerJWK(rsaKey.Public(), "PS256", nil), claims(testNow.Add(validFor))), nil},
		{"tampered payload", tampered, jws.ErrInvalidSignature},
		{"forged signature", jwstest.Sign(t, "ES256", other, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(validFor))), jws.ErrInvalidSignature},
		{"expired", jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(-2*time.Minute))), jws.ErrExpired},
		{"missing exp", jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), noExp), jws.ErrMissingExp},
		{"jwk without alg", jwstest.Sign(t, "ES256", k, map[string]any{"jwk": noAlg["jwk"]}, claims(testNow.Add(validFor))), ErrMissingKeyAlg},
		{"header alg differs from jwk alg", jwstest.Sign(t, "PS256", rsaKey, headerJWK(rsaKey.Public(), "RS256", nil), claims(testNow.Add(validFor))), ErrAlgMismatch},
		{"jwk alg inconsistent with key", jwstest.Sign(t, "ES384", k, headerJWK(k.Public(), "ES384", nil), claims(testNow.Add(validFor))), jws.ErrKeyMismatch},
		{"alg none", unsignedToken(map[string]any{"alg": "none", "jwk": jwstest.JWK(k.Public(), "none", "")}), jws.ErrUnsupportedAlg},
		{"HS256 keyed with the jwk", unsignedToken(map[string]any{"alg": "HS256", "jwk": jwstest.JWK(k.Public(), "HS256", "")}), jws.ErrUnsupportedAlg},
		{"neither jwk nor kid", jwstest.Sign(t, "ES256", k, nil, claims(testNow.Add(validFor))), ErrNoKeyIdentifier},
		{"kid without JWK sets", jwstest.Sign(t, "ES256", k, map[string]any{"kid": "a"}, claims(testNow.Add(validFor))), ErrUntrustedKey},
		{"not a JWT", "abc", jws.ErrMalformed},
	}
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Twice: the second run goes through the header-key cache.
			for range 2 {
				_, err := v.Verify(context.Background(), c.token)
				if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("got %v, want %v", err, c.wantErr)
				}
			}
		})
	}
}

func unsignedToken(header map[string]any) string {
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims(testNow.Add(validFor)))
	return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb) + ".c2ln"
}

// Without insecure_header_jwk and without trusted certificates, a header
// JWK is never trusted, even when a JWK set is configured.
func TestHeaderJWKNeedsEndorsement(t *testing.T) {
	k := genP256(t)
	set := writeJWKS(t, jwstest.JWK(k.Public(), "ES256", "k1"))
	v, err := New(context.Background(), Config{TrustedJWKSets: []string{set}}, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(validFor)))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("got %v", err)
	}
}

func writeJWKS(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKidJWKSet(t *testing.T) {
	ec := genP256(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	noAlg := genP256(t)
	fileSet := writeJWKS(t, jwstest.JWK(ec.Public(), "ES256", "ec-1"), jwstest.JWK(noAlg.Public(), "", "no-alg"))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{jwstest.JWK(rsaKey.Public(), "PS384", "ita-1")}})
	}))
	defer srv.Close()
	v, err := New(context.Background(), Config{TrustedJWKSets: []string{"file://" + fileSet, srv.URL + "/certs"}},
		Options{Now: fixedClock, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(validFor)
	cases := []struct {
		name    string
		token   string
		wantErr error
	}{
		{"file set ES256", jwstest.Sign(t, "ES256", ec, map[string]any{"kid": "ec-1"}, claims(exp)), nil},
		{"https set PS384 (Intel TA style)", jwstest.Sign(t, "PS384", rsaKey, map[string]any{"kid": "ita-1"}, claims(exp)), nil},
		{"unknown kid", jwstest.Sign(t, "ES256", ec, map[string]any{"kid": "nope"}, claims(exp)), jws.ErrUnknownKid},
		{"wrong key for kid", jwstest.Sign(t, "ES256", genP256(t), map[string]any{"kid": "ec-1"}, claims(exp)), jws.ErrInvalidSignature},
		{"header alg differs from JWK alg", jwstest.Sign(t, "RS256", rsaKey, map[string]any{"kid": "ita-1"}, claims(exp)), ErrAlgMismatch},
		{"JWK without alg", jwstest.Sign(t, "ES256", noAlg, map[string]any{"kid": "no-alg"}, claims(exp)), ErrMissingKeyAlg},
		{"expired", jwstest.Sign(t, "ES256", ec, map[string]any{"kid": "ec-1"}, claims(testNow.Add(-time.Hour))), jws.ErrExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), c.token)
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		is   error
	}{
		{"no trust anchors", Config{}, ErrNoTrustAnchor},
		{"only extra paths", Config{ExtraTeeKeyPaths: []string{"/a"}}, ErrNoTrustAnchor},
		{"missing cert file", Config{TrustedCertsPaths: []string{filepath.Join(dir, "missing.pem")}}, nil},
		{"no certificate in bundle", Config{TrustedCertsPaths: []string{notPEM}}, nil},
		{"missing JWK set", Config{TrustedJWKSets: []string{filepath.Join(dir, "missing.json")}}, nil},
		{"http JWK set", Config{TrustedJWKSets: []string{"http://127.0.0.1:1/jwks"}}, nil},
		{"bad extra pointer", Config{InsecureHeaderJWK: true, ExtraTeeKeyPaths: []string{"no-slash"}}, nil},
		{"bad extra pointer escape", Config{InsecureHeaderJWK: true, ExtraTeeKeyPaths: []string{"/a~2"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(context.Background(), c.cfg, Options{})
			if err == nil {
				t.Fatal("expected an error")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("got %v, want %v", err, c.is)
			}
		})
	}
	if _, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{}); err != nil {
		t.Fatalf("insecure_header_jwk alone: %v", err)
	}
}

// earToken builds a token shaped like the builtin AS's EAR: ES256, header
// jwk, ~17 KB of annotated evidence.
func earToken(tb testing.TB, k *ecdsa.PrivateKey) string {
	tb.Helper()
	tee := map[string]any{"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
		"x": strings.Repeat("A", 43), "y": strings.Repeat("B", 43)}
	evidence := map[string]any{
		"sample":              map[string]any{"svn": "1", "launch_digest": "abcde", "report_data": strings.Repeat("00", 64)},
		"runtime_data_claims": map[string]any{"nonce": "bm9uY2U", "tee-pubkey": tee},
		"uefi_event_logs":     []any{},
	}
	logs := make([]any, 0, 100)
	for i := range 100 {
		logs = append(logs, map[string]any{"index": i, "digest": strings.Repeat(fmt.Sprintf("%02x", i), 48), "event": strings.Repeat("ev", 30)})
	}
	evidence["uefi_event_logs"] = logs
	c := map[string]any{
		"eat_profile":     "tag:github.com,2024:confidential-containers/Trustee",
		"iat":             testNow.Unix(),
		"exp":             testNow.Add(5 * time.Minute).Unix(),
		"iss":             "CoCo-Attestation-Service",
		"ear.verifier-id": map[string]any{"developer": "https://confidentialcontainers.org", "build": "sigil"},
		"submods": map[string]any{"cpu0": map[string]any{
			"ear.status":                      "affirming",
			"ear.trustworthiness-vector":      map[string]any{"instance-identity": 2, "configuration": 2},
			"ear.appraisal-policy-id":         "default",
			"ear.veraison.annotated-evidence": evidence,
		}},
	}
	return jwstest.Sign(tb, "ES256", k, headerJWK(k.Public(), "ES256", nil), c)
}

func TestEARTokenRoundTrip(t *testing.T) {
	k := genP256(t)
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), earToken(t, k))
	if err != nil {
		t.Fatal(err)
	}
	key, err := TeePubKey(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key.Kty != "EC" || key.Alg != "ECDH-ES+A256KW" {
		t.Fatalf("tee key %+v", key)
	}
}

func BenchmarkVerifyEAR(b *testing.B) {
	k := genP256(b)
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		b.Fatal(err)
	}
	tok := earToken(b, k)
	ctx := context.Background()
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(jwstest.Sign(f, "ES256", k, headerJWK(k.Public(), "ES256", nil), claims(testNow.Add(validFor))))
	f.Add(jwstest.Sign(f, "ES256", k, map[string]any{"kid": "a"}, claims(testNow.Add(validFor))))
	f.Add("e30.e30.e30")
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(context.Background(), s)
		if err == nil && c == nil {
			t.Fatal("nil claims without error")
		}
	})
}

// BenchmarkVerifySmall isolates the fixed cost (parse, cached header key,
// signature, exp) from claims decoding.
func BenchmarkVerifySmall(b *testing.B) {
	k := genP256(b)
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		b.Fatal(err)
	}
	tok := jwstest.Sign(b, "ES256", k, headerJWK(k.Public(), "ES256", nil), map[string]any{"exp": testNow.Add(validFor).Unix()})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
