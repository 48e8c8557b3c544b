package tokenverify

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws"
	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
)

// timed returns EAR-like claims with the given time claims (a nil value
// omits the claim), as offsets from testNow.
func timed(iat, nbf, exp *time.Duration) map[string]any {
	c := map[string]any{
		"iss":     "CoCo-Attestation-Service",
		"submods": map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}},
	}
	for name, d := range map[string]*time.Duration{"iat": iat, "nbf": nbf, "exp": exp} {
		if d != nil {
			c[name] = testNow.Add(*d).Unix()
		}
	}
	return c
}

func dur(d time.Duration) *time.Duration { return &d }

func TestVerifyTimeClaims(t *testing.T) {
	k := genP256(t)
	sign := func(c map[string]any) string {
		return jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", nil), c)
	}
	cases := []struct {
		name    string
		claims  map[string]any
		maxLife time.Duration // 0: the default
		wantErr error
	}{
		{"EAR default lifetime", timed(dur(0), nil, dur(5*time.Minute)), 0, nil},
		{"issued 4 minutes ago", timed(dur(-4*time.Minute), nil, dur(time.Minute)), 0, nil},
		{"nbf and iat within leeway", timed(dur(30*time.Second), dur(30*time.Second), dur(5*time.Minute)), 0, nil},
		{"no iat, exp within lifetime", timed(nil, nil, dur(5*time.Minute)), 0, nil},
		{"configured longer lifetime", timed(dur(0), nil, dur(time.Hour)), time.Hour, nil},

		{"missing exp", timed(dur(0), nil, nil), 0, jws.ErrMissingExp},
		{"nbf in the future", timed(dur(0), dur(2*time.Minute), dur(5*time.Minute)), 0, jws.ErrNotYetValid},
		{"iat in the future", timed(dur(2*time.Minute), nil, dur(5*time.Minute)), 0, jws.ErrIssuedInFuture},
		{"iat far in the future", timed(dur(24*time.Hour), nil, dur(24*time.Hour+time.Minute)), 0, jws.ErrIssuedInFuture},
		{"exp - iat beyond the default", timed(dur(0), nil, dur(time.Hour)), 0, jws.ErrLifetimeTooLong},
		{"exp - iat beyond a configured lifetime", timed(dur(0), nil, dur(3*time.Hour)), time.Hour, jws.ErrLifetimeTooLong},
		{"no iat, exp far away", timed(nil, nil, dur(10*365*24*time.Hour)), 0, jws.ErrLifetimeTooLong},
		{"backdated iat hides a long exp", timed(dur(-time.Minute), nil, dur(time.Hour)), 0, jws.ErrLifetimeTooLong},
		{"string nbf", func() map[string]any {
			c := timed(dur(0), nil, dur(time.Minute))
			c["nbf"] = "soon"
			return c
		}(), 0, jws.ErrInvalidTimeClaim},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := New(context.Background(), Config{InsecureHeaderJWK: true, MaxTokenLifetime: c.maxLife}, Options{Now: fixedClock})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), sign(c.claims))
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
	if _, err := New(context.Background(), Config{InsecureHeaderJWK: true, MaxTokenLifetime: -time.Second}, Options{}); err == nil {
		t.Error("negative MaxTokenLifetime accepted")
	}
}

// certOpts shapes a test certificate.
type certOpts struct {
	isCA         bool
	keyUsage     x509.KeyUsage // 0: no KeyUsage extension
	extKeyUsage  []x509.ExtKeyUsage
	unknownEKU   []asn1.ObjectIdentifier
	noBasicConst bool
}

func issueWith(t testing.TB, name string, pub crypto.PublicKey, signer crypto.Signer, parent *ca, o certOpts) *ca {
	t.Helper()
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(24 * time.Hour),
		BasicConstraintsValid: !o.noBasicConst,
		IsCA:                  o.isCA,
		KeyUsage:              o.keyUsage,
		ExtKeyUsage:           o.extKeyUsage,
		UnknownExtKeyUsage:    o.unknownEKU,
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

func TestX5cSignerCertificate(t *testing.T) {
	root := newCA(t, "root")
	customEKU := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	cases := []struct {
		name    string
		opts    certOpts
		pinned  bool // self-signed and listed as the trust anchor
		wantErr bool
	}{
		{"no KeyUsage, no EKU (openssl x509 -req default)", certOpts{}, false, false},
		{"digitalSignature", certOpts{keyUsage: x509.KeyUsageDigitalSignature}, false, false},
		{"digitalSignature + keyEncipherment", certOpts{keyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}, false, false},
		{"keyEncipherment only", certOpts{keyUsage: x509.KeyUsageKeyEncipherment}, false, true},
		{"keyAgreement only", certOpts{keyUsage: x509.KeyUsageKeyAgreement}, false, true},
		{"contentCommitment only", certOpts{keyUsage: x509.KeyUsageContentCommitment}, false, true},
		{"EKU any", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}, false, false},
		{"EKU serverAuth + any", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageAny}}, false, false},
		{"EKU codeSigning", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, false, false},
		{"EKU private OID", certOpts{unknownEKU: []asn1.ObjectIdentifier{customEKU}}, false, false},
		{"EKU serverAuth + private OID", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, unknownEKU: []asn1.ObjectIdentifier{customEKU}}, false, false},
		{"EKU serverAuth only", certOpts{keyUsage: x509.KeyUsageDigitalSignature, extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, false, true},
		{"EKU clientAuth only", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, false, true},
		{"EKU serverAuth + clientAuth (TLS certificate)", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, false, true},
		{"EKU OCSPSigning", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, false, true},
		{"EKU timeStamping", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}, false, true},
		{"CA leaf under the root", certOpts{isCA: true, keyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, false, true},
		{"CA leaf under the root without KeyUsage", certOpts{isCA: true}, false, true},
		{"no basic constraints", certOpts{noBasicConst: true}, false, false},
		{"pinned self-signed end-entity", certOpts{keyUsage: x509.KeyUsageDigitalSignature}, true, false},
		{"pinned self-signed CA", certOpts{isCA: true, keyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, true, false},
		{"pinned self-signed CA without digitalSignature", certOpts{isCA: true, keyUsage: x509.KeyUsageCertSign}, true, true},
		{"pinned self-signed TLS certificate", certOpts{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := genP256(t)
			var leaf *ca
			trust := root.cert
			if c.pinned {
				leaf = issueWith(t, "pinned", k.Public(), k, nil, c.opts)
				trust = leaf.cert
			} else {
				leaf = issueWith(t, "CoCo-AS", k.Public(), k, root, c.opts)
			}
			v, err := New(context.Background(), Config{TrustedCertsPaths: []string{writePEM(t, trust)}}, Options{Now: fixedClock})
			if err != nil {
				t.Fatal(err)
			}
			tok := jwstest.Sign(t, "ES256", k, headerJWK(k.Public(), "ES256", x5c(leaf.cert)), claims(testNow.Add(validFor)))
			_, err = v.Verify(context.Background(), tok)
			if !c.wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUntrustedKey) || !errors.Is(err, ErrSignerCert) {
				t.Fatalf("got %v, want ErrUntrustedKey and ErrSignerCert", err)
			}
		})
	}
}

// An intermediate CA's own key, presented with the intermediate as the
// x5c leaf, must not sign tokens even though the chain verifies.
func TestX5cIntermediateAsSigner(t *testing.T) {
	root := newCA(t, "root")
	ik := genP256(t)
	inter := issue(t, "int", ik.Public(), ik, root, true, testNow.Add(-time.Hour), testNow.Add(time.Hour))
	v, err := New(context.Background(), Config{TrustedCertsPaths: []string{writePEM(t, root.cert)}}, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	tok := jwstest.Sign(t, "ES256", ik, headerJWK(ik.Public(), "ES256", x5c(inter.cert)), claims(testNow.Add(validFor)))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrSignerCert) {
		t.Fatalf("got %v", err)
	}
}

// signRaw signs the exact header and payload bytes given.
func signRaw(t testing.TB, k crypto.Signer, header, payload string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := jwstest.SignInput("ES256", k, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// A correctly signed token whose JSON is ambiguous (two parsers may read
// different claims out of it) is refused, however it was signed.
func TestVerifyRejectsAmbiguousJSON(t *testing.T) {
	k := genP256(t)
	jwk, err := json.Marshal(jwstest.JWK(k.Public(), "ES256", ""))
	if err != nil {
		t.Fatal(err)
	}
	header := `{"typ":"JWT","alg":"ES256","jwk":` + string(jwk) + `}`
	times := `"iat":1780315200,"exp":1780315440`
	if got := testNow.Unix(); got != 1780315200 {
		t.Fatalf("testNow moved: %d", got)
	}
	cases := []struct {
		name    string
		header  string
		payload string
		wantErr bool
	}{
		{"clean", header, `{` + times + `,"submods":{"cpu0":{"ear.status":"contraindicated"}}}`, false},
		{"duplicate status", header, `{` + times + `,"submods":{"cpu0":{"ear.status":"contraindicated","ear.status":"affirming"}}}`, true},
		{"duplicate submods", header, `{` + times + `,"submods":{"cpu0":{"ear.status":"contraindicated"}},"submods":{"cpu0":{"ear.status":"affirming"}}}`, true},
		{"duplicate exp", header, `{` + times + `,"exp":4102444800}`, true},
		{"wrong-case header Alg", `{"typ":"JWT","Alg":"ES256","alg":"ES256","jwk":` + string(jwk) + `}`, `{` + times + `}`, true},
		{"invalid UTF-8 claim", header, "{" + times + ",\"svn\":\"\xed\xa0\x80\"}", true},
		{"lone surrogate claim", header, `{` + times + `,"svn":"\udc00"}`, true},
	}
	v, err := New(context.Background(), Config{InsecureHeaderJWK: true}, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), signRaw(t, k, c.header, c.payload))
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, jws.ErrMalformed) {
				t.Fatalf("error %v does not wrap jws.ErrMalformed", err)
			}
		})
	}
}
