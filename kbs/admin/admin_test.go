package admin

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
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

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

func pubPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func genEd(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testerClaims mirrors the Trustee integration-test admin token.
func testerClaims() map[string]any {
	return map[string]any{"iss": "issuer", "role": "tester", "aud": []any{"audience"},
		"iat": testNow.Unix(), "exp": testNow.Add(7200 * time.Second).Unix()}
}

func request(t testing.TB, method, target, token string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader("{}"))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

var adminRequests = []struct{ method, target string }{
	{http.MethodPost, "/kbs/v0/resource-policy"},
	{http.MethodPost, "/kbs/v0/attestation-policy"},
	{http.MethodPost, "/kbs/v0/resource/a/b/c"},
}

// TestIntegrationScenarios mirrors Trustee's integration-tests admin cases.
func TestIntegrationScenarios(t *testing.T) {
	key, wrong := genEd(t), genEd(t)
	pemPath := writeFile(t, "admin.pub", pubPEM(t, key.Public()))
	provider := []IdentityProvider{{Issuer: "issuer", PublicKeyURI: pemPath}}
	good := jwstest.Sign(t, "EdDSA", key, map[string]any{"typ": "JWT"}, testerClaims())
	bad := jwstest.Sign(t, "EdDSA", wrong, map[string]any{"typ": "JWT"}, testerClaims())

	cases := []struct {
		name     string
		cfg      Config
		token    string
		wantText string // "" = allowed
		wantKind DenyKind
	}{
		{"valid key", Config{Mode: AuthenticatedAuthorization, Providers: provider, ACL: []ACLEntry{{"tester", "^/kbs/.+$"}}}, good, "", 0},
		{"wrong key", Config{Mode: AuthenticatedAuthorization, Providers: provider, ACL: []ACLEntry{{"tester", "^/kbs/.+$"}}}, bad,
			"Admin access denied: Cannot verify token with any of the issuers", Unverified},
		{"DenyAll", Config{Mode: DenyAll}, good,
			"Admin access denied: Admin access denied as DenyAll authorization_mode is enabled", DenyAllMode},
		{"ACL for reference-value only", Config{Mode: AuthenticatedAuthorization, Providers: provider,
			ACL: []ACLEntry{{"tester", "^/kbs/v0/reference-value/[a-zA-Z0-9]+$"}}}, good,
			"Admin access denied: Role tester not allowed for path ", RoleNotAllowed},
		{"InsecureAllowAll without token", Config{Mode: InsecureAllowAll}, "", "", 0},
	}
	for _, c := range cases {
		a, err := New(context.Background(), c.cfg, Options{Now: clock})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, req := range adminRequests {
			t.Run(c.name+" "+req.method+" "+req.target, func(t *testing.T) {
				err := a.Authorize(context.Background(), request(t, req.method, req.target, c.token))
				if c.wantText == "" {
					if err != nil {
						t.Fatalf("denied: %v", err)
					}
					return
				}
				var denied *AccessDeniedError
				if !errors.As(err, &denied) {
					t.Fatalf("got %T %v", err, err)
				}
				if denied.Kind != c.wantKind {
					t.Fatalf("kind %d, want %d", denied.Kind, c.wantKind)
				}
				want := c.wantText
				if c.wantKind == RoleNotAllowed {
					want += req.target
				}
				if err.Error() != want {
					t.Fatalf("text %q, want %q", err.Error(), want)
				}
			})
		}
	}
	// The KBS must be able to log why verification failed.
	a, _ := New(context.Background(), Config{Mode: AuthenticatedAuthorization, Providers: provider, ACL: []ACLEntry{{"tester", "^/kbs/.+$"}}}, Options{Now: clock})
	err := a.Authorize(context.Background(), request(t, "POST", "/kbs/v0/resource-policy", bad))
	if errors.Unwrap(err) == nil || !strings.Contains(errors.Unwrap(err).Error(), "identity provider 0") {
		t.Fatalf("no cause attached: %v", errors.Unwrap(err))
	}
}

// TestDockerComposeToken mirrors the token setup.sh mints.
func TestDockerComposeToken(t *testing.T) {
	key := genEd(t)
	pemPath := writeFile(t, "public.pub", pubPEM(t, key.Public()))
	iat := testNow.Add(-24 * time.Hour).Unix()
	token := jwstest.Sign(t, "EdDSA", key, map[string]any{"typ": "JWT"}, map[string]any{
		"iss": "TrusteeInDocker", "sub": "admin", "aud": []any{"KBS"}, "role": "admin", "iat": iat, "exp": iat + 315360000,
	})
	for _, uri := range []string{pemPath, "file://" + pemPath} {
		for _, idp := range []IdentityProvider{
			{PublicKeyURI: uri},
			{Issuer: "TrusteeInDocker", Audience: "KBS", PublicKeyURI: uri},
		} {
			a, err := New(context.Background(), Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{idp},
				ACL: []ACLEntry{{"admin", "^/kbs/.+$"}}}, Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{"/kbs/v0/resource/one/two/three", "/kbs/v0/resource-policy", "/kbs/v0/reference-value/x?y=1"} {
				if err := a.Authorize(context.Background(), request(t, "POST", target, token)); err != nil {
					t.Fatalf("%+v %s: %v", idp, target, err)
				}
			}
			if err := a.Authorize(context.Background(), request(t, "POST", "/kbs/", token)); err == nil {
				t.Fatal("^/kbs/.+$ must not match /kbs/")
			}
		}
	}
}

func hs256WithKeyBytes(t testing.TB, keyBytes []byte, claims map[string]any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT"})
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	mac := hmac.New(sha256.New, keyBytes)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func noneToken(claims map[string]any) string {
	hb, _ := json.Marshal(map[string]any{"alg": "none"})
	cb, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb) + "."
}

func TestAuthenticatedAuthorization(t *testing.T) {
	ed := genEd(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPEM := pubPEM(t, ed.Public())
	rsaPEM := pubPEM(t, rsaKey.Public())
	ecPath := writeFile(t, "ec.pub", pubPEM(t, ec.Public()))
	edPath := writeFile(t, "ed.pub", edPEM)
	rsaPath := writeFile(t, "rsa.pub", rsaPEM)

	cfg := Config{
		Mode: AuthenticatedAuthorization,
		Providers: []IdentityProvider{
			{Issuer: "issuer", Audience: "audience", PublicKeyURI: edPath},
			{Issuer: "other-issuer", PublicKeyURI: ecPath},
			{PublicKeyURI: rsaPath},
		},
		ACL: []ACLEntry{
			{"tester", "^/kbs/v0/resource-policy$"},
			{"tester", `^/kbs/v0/resource/[^/?]+/[^/?]+/[^/?]+(\?force=true)?$`},
			{"ops", "^/kbs/v0/reference-value/.+$"},
			{"queryonly", `^/kbs/v0/resource-policy\?force=true$`},
			{"pub", `^/kbs/v0/resource/.+/public$`},
		},
	}
	a, err := New(context.Background(), cfg, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	with := func(mod func(map[string]any)) map[string]any {
		c := testerClaims()
		mod(c)
		return c
	}
	const unverified = "Admin access denied: Cannot verify token with any of the issuers"
	cases := []struct {
		name   string
		target string
		token  string
		header string // overrides the Authorization header when set
		want   string // "" = allowed
	}{
		{"EdDSA ok", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "", ""},
		{"aud as string ok", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["aud"] = "audience" })), "", ""},
		{"exp within leeway", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["exp"] = testNow.Add(-30 * time.Second).Unix() })), "", ""},
		{"expired", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["exp"] = testNow.Add(-2 * time.Minute).Unix() })), "", unverified},
		{"no exp", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { delete(c, "exp") })), "", unverified},
		{"missing role", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { delete(c, "role") })), "",
			"Admin access denied: Failed to parse claims from token: Missing required `role` claim in JWT"},
		{"non-string role", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = []any{"tester"} })), "",
			"Admin access denied: Failed to parse claims from token: Missing required `role` claim in JWT"},
		{"missing role from an unmatched issuer", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { delete(c, "role"); c["iss"] = "evil" })), "", unverified},
		{"issuer mismatch", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["iss"] = "evil" })), "", unverified},
		{"issuer missing", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { delete(c, "iss") })), "", unverified},
		{"audience mismatch", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["aud"] = []any{"kbs", "other"} })), "", unverified},
		{"audience missing", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { delete(c, "aud") })), "", unverified},
		{"ES256 second provider", "/kbs/v0/resource-policy", jwstest.Sign(t, "ES256", ec, nil, with(func(c map[string]any) { c["iss"] = "other-issuer" })), "", ""},
		{"ES256 wrong issuer for its provider", "/kbs/v0/resource-policy", jwstest.Sign(t, "ES256", ec, nil, testerClaims()), "", unverified},
		{"RS256 third provider, no issuer/audience checks", "/kbs/v0/resource-policy", jwstest.Sign(t, "RS256", rsaKey, nil, with(func(c map[string]any) { c["iss"] = "x"; delete(c, "aud") })), "", ""},
		{"PS512 third provider", "/kbs/v0/resource-policy", jwstest.Sign(t, "PS512", rsaKey, nil, testerClaims()), "", ""},
		{"ES384 header on P-256 key", "/kbs/v0/resource-policy", relabel(jwstest.Sign(t, "ES256", ec, nil, with(func(c map[string]any) { c["iss"] = "other-issuer" })), "ES384"), "", unverified},
		{"HS256 keyed with Ed25519 PEM", "/kbs/v0/resource-policy", hs256WithKeyBytes(t, edPEM, testerClaims()), "", unverified},
		{"HS256 keyed with RSA PEM", "/kbs/v0/resource-policy", hs256WithKeyBytes(t, rsaPEM, testerClaims()), "", unverified},
		{"alg none", "/kbs/v0/resource-policy", noneToken(testerClaims()), "", unverified},
		{"garbage token", "/kbs/v0/resource-policy", "not-a-jwt", "", unverified},
		{"query the ACL allows", "/kbs/v0/resource/a/b/c?force=true", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "", ""},
		{"bare path the ACL allows", "/kbs/v0/resource/a/b/c", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "", ""},
		{"query the ACL excludes: denied, reported without the query", "/kbs/v0/resource/a/b/c?force=false", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "",
			"Admin access denied: Role tester not allowed for path /kbs/v0/resource/a/b/c"},
		{"query participates: extra query denied", "/kbs/v0/resource-policy?x=1", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "",
			"Admin access denied: Role tester not allowed for path /kbs/v0/resource-policy"},
		{"an ACL that only the query satisfies never matches", "/kbs/v0/resource-policy?force=true", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = "queryonly" })), "",
			"Admin access denied: Role queryonly not allowed for path /kbs/v0/resource-policy"},
		{"path pattern inside the query denied", "/kbs/v0/resource/secret/key/x?a=/public", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = "pub" })), "",
			"Admin access denied: Role pub not allowed for path /kbs/v0/resource/secret/key/x"},
		{"path pattern in the path allowed", "/kbs/v0/resource/a/b/public", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = "pub" })), "", ""},
		{"other role's ACL does not apply", "/kbs/v0/reference-value/abc", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), "",
			"Admin access denied: Role tester not allowed for path /kbs/v0/reference-value/abc"},
		{"ops role", "/kbs/v0/reference-value/abc", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = "ops" })), "", ""},
		{"unknown role", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, with(func(c map[string]any) { c["role"] = "nobody" })), "",
			"Admin access denied: Role nobody not allowed for path /kbs/v0/resource-policy"},
		{"no header", "/kbs/v0/resource-policy", "", "-", "Failed to parse HTTP Auth Bearer header"},
		{"basic auth", "/kbs/v0/resource-policy", "", "Basic dXNlcjpwYXNz", "Failed to parse HTTP Auth Bearer header"},
		{"empty bearer", "/kbs/v0/resource-policy", "", "Bearer ", "Failed to parse HTTP Auth Bearer header"},
		{"bearer with spaces", "/kbs/v0/resource-policy", "", "Bearer a b", "Failed to parse HTTP Auth Bearer header"},
		{"lower-case scheme", "/kbs/v0/resource-policy", "", "bearer " + jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, "POST", c.target, c.token)
			switch c.header {
			case "":
			case "-":
				r.Header.Del("Authorization")
			default:
				r.Header.Set("Authorization", c.header)
			}
			err := a.Authorize(context.Background(), r)
			if c.want == "" {
				if err != nil {
					t.Fatalf("denied: %v (cause %v)", err, errors.Unwrap(err))
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			var denied *AccessDeniedError
			var hdr *BearerHeaderError
			if !errors.As(err, &denied) && !errors.As(err, &hdr) {
				t.Fatalf("untyped error %T", err)
			}
		})
	}
	// Two Authorization headers are garbled.
	r := request(t, "POST", "/kbs/v0/resource-policy", jwstest.Sign(t, "EdDSA", ed, nil, testerClaims()))
	r.Header.Add("Authorization", "Bearer x")
	var hdr *BearerHeaderError
	if err := a.Authorize(context.Background(), r); !errors.As(err, &hdr) {
		t.Fatalf("got %v", err)
	}
}

func relabel(token, alg string) string {
	parts := strings.Split(token, ".")
	hb, _ := json.Marshal(map[string]any{"alg": alg})
	parts[0] = base64.RawURLEncoding.EncodeToString(hb)
	return strings.Join(parts, ".")
}

func TestJWKSProvider(t *testing.T) {
	k1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k2 := genEd(t)
	noAlg := genEd(t)
	var rotated atomic.Bool
	var fetches atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	mux.HandleFunc("/realms/kbs/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL + "/realms/kbs", "jwks_uri": srv.URL + "/realms/kbs/certs"})
	})
	mux.HandleFunc("/realms/kbs/certs", func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		keys := []any{jwstest.JWK(k1.Public(), "ES256", "k1"), jwstest.JWK(noAlg.Public(), "", "no-alg")}
		if rotated.Load() {
			keys = append(keys, jwstest.JWK(k2.Public(), "EdDSA", "k2"))
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	now := testNow
	cfg := Config{
		Mode:      AuthenticatedAuthorization,
		Providers: []IdentityProvider{{Issuer: "idp", JWKSetURI: srv.URL + "/realms/kbs"}},
		ACL:       []ACLEntry{{"admin", "^/kbs/.+$"}},
	}
	a, err := New(context.Background(), cfg, Options{HTTPClient: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cl := map[string]any{"iss": "idp", "role": "admin", "exp": testNow.Add(24 * time.Hour).Unix()}
	check := func(name, token string, wantOK bool) {
		t.Helper()
		err := a.Authorize(context.Background(), request(t, "POST", "/kbs/v0/resource-policy", token))
		if wantOK != (err == nil) {
			t.Fatalf("%s: got %v (cause %v)", name, err, errors.Unwrap(err))
		}
	}
	check("kid k1", jwstest.Sign(t, "ES256", k1, map[string]any{"kid": "k1"}, cl), true)
	check("no kid", jwstest.Sign(t, "ES256", k1, nil, cl), false)
	check("JWK without alg", jwstest.Sign(t, "EdDSA", noAlg, map[string]any{"kid": "no-alg"}, cl), false)
	check("alg differs from JWK alg", relabel(jwstest.Sign(t, "ES256", k1, map[string]any{"kid": "k1"}, cl), "ES384"), false)
	rotated.Store(true)
	before := fetches.Load()
	check("rotated key within refresh interval", jwstest.Sign(t, "EdDSA", k2, map[string]any{"kid": "k2"}, cl), false)
	if fetches.Load() != before {
		t.Fatalf("refetched within the refresh interval")
	}
	now = now.Add(time.Minute)
	check("rotated key after refresh interval", jwstest.Sign(t, "EdDSA", k2, map[string]any{"kid": "k2"}, cl), true)
	if fetches.Load() != before+1 {
		t.Fatalf("fetches %d, want %d", fetches.Load(), before+1)
	}
}

func TestHTTPSPublicKeyURI(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A PEM certificate works as a public key source too.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "admin"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ec.Public(), ec)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}))
	defer srv.Close()
	a, err := New(context.Background(), Config{Mode: AuthenticatedAuthorization,
		Providers: []IdentityProvider{{PublicKeyURI: srv.URL + "/admin.pem"}},
		ACL:       []ACLEntry{{"admin", "^/kbs/v0/resource-policy$"}}}, Options{HTTPClient: srv.Client(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "ES384", ec, nil, map[string]any{"role": "admin", "exp": testNow.Add(time.Hour).Unix()})
	if err := a.Authorize(context.Background(), request(t, "GET", "/kbs/v0/resource-policy", tok)); err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	ed := genEd(t)
	pemPath := writeFile(t, "k.pub", pubPEM(t, ed.Public()))
	notPEM := writeFile(t, "k.txt", []byte("nope"))
	idp := []IdentityProvider{{PublicKeyURI: pemPath}}
	cases := []struct {
		name string
		cfg  Config
		is   error
	}{
		{"unknown mode", Config{Mode: "Simple"}, nil},
		{"empty mode", Config{}, nil},
		{"no providers", Config{Mode: AuthenticatedAuthorization}, nil},
		{"provider without key source", Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{{Issuer: "x"}}}, nil},
		{"missing key file", Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{{PublicKeyURI: pemPath + ".missing"}}}, nil},
		{"not a PEM key", Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{{PublicKeyURI: notPEM}}}, nil},
		{"http key URI", Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{{PublicKeyURI: "http://127.0.0.1:1/k.pem"}}}, nil},
		{"missing JWKS", Config{Mode: AuthenticatedAuthorization, Providers: []IdentityProvider{{JWKSetURI: pemPath + ".missing"}}}, nil},
		{"unanchored start", Config{Mode: AuthenticatedAuthorization, Providers: idp, ACL: []ACLEntry{{"a", "/kbs/.*$"}}}, ErrUnanchoredRegex},
		{"unanchored end", Config{Mode: AuthenticatedAuthorization, Providers: idp, ACL: []ACLEntry{{"a", "^/kbs/.*"}}}, ErrUnanchoredRegex},
		{"not under /kbs", Config{Mode: AuthenticatedAuthorization, Providers: idp, ACL: []ACLEntry{{"a", "^/.*$"}}}, ErrUnanchoredRegex},
		{"bad regex", Config{Mode: AuthenticatedAuthorization, Providers: idp, ACL: []ACLEntry{{"a", "^/kbs/(a$"}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(context.Background(), c.cfg, Options{})
			if err == nil {
				t.Fatal("expected an error")
			}
			if c.is != nil {
				if !errors.Is(err, c.is) || !strings.Contains(err.Error(), "Admin Role regex must be anchored.") {
					t.Fatalf("got %v", err)
				}
			}
		})
	}
	// An empty ACL is valid and denies everything.
	a, err := New(context.Background(), Config{Mode: AuthenticatedAuthorization, Providers: idp}, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "EdDSA", ed, nil, map[string]any{"role": "admin", "exp": testNow.Add(time.Hour).Unix()})
	if err := a.Authorize(context.Background(), request(t, "POST", "/kbs/v0/resource-policy", tok)); err == nil {
		t.Fatal("empty ACL allowed a request")
	}
}

// A top-level alternation cannot escape the anchors.
func TestACLAlternationStaysAnchored(t *testing.T) {
	ed := genEd(t)
	a, err := New(context.Background(), Config{Mode: AuthenticatedAuthorization,
		Providers: []IdentityProvider{{PublicKeyURI: writeFile(t, "k.pub", pubPEM(t, ed.Public()))}},
		ACL:       []ACLEntry{{"admin", "^/kbs/v0/reference-value/x|/evil$"}}}, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "EdDSA", ed, nil, map[string]any{"role": "admin", "exp": testNow.Add(time.Hour).Unix()})
	for target, allowed := range map[string]bool{
		"/kbs/v0/reference-value/x":   true,
		"/kbs/v0/resource/a/b/evil":   false,
		"/kbs/v0/reference-value/xyz": false,
	} {
		err := a.Authorize(context.Background(), request(t, "POST", target, tok))
		if allowed != (err == nil) {
			t.Errorf("%s: got %v", target, err)
		}
	}
}
