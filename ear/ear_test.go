package ear

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func i8(v int8) *int8 { return &v }

func TestStatusOf(t *testing.T) {
	tests := []struct {
		v    int8
		want Status
	}{
		{-128, StatusContraindicated}, {-97, StatusContraindicated}, {-96, StatusWarning},
		{-33, StatusWarning}, {-32, StatusAffirming}, {-2, StatusAffirming},
		{-1, StatusNone}, {0, StatusNone}, {1, StatusNone},
		{2, StatusAffirming}, {31, StatusAffirming}, {32, StatusWarning},
		{95, StatusWarning}, {96, StatusContraindicated}, {127, StatusContraindicated},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.v); got != tt.want {
			t.Errorf("StatusOf(%d) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestStatusOrdering(t *testing.T) {
	order := []Status{StatusNone, StatusAffirming, StatusWarning, StatusContraindicated}
	for i, s := range order {
		if s.Rank() != i {
			t.Errorf("%s rank %d, want %d", s, s.Rank(), i)
		}
		for j, o := range order {
			if s.WorseThan(o) != (i > j) {
				t.Errorf("%s.WorseThan(%s) = %v", s, o, s.WorseThan(o))
			}
		}
	}
	if got := Worst(StatusAffirming, StatusContraindicated, StatusWarning); got != StatusContraindicated {
		t.Errorf("Worst = %s", got)
	}
	if got := Worst(); got != StatusNone {
		t.Errorf("Worst() = %s", got)
	}
	if _, err := ParseStatus("bogus"); err == nil {
		t.Error("ParseStatus accepted bogus")
	}
	if Status("x").Valid() {
		t.Error("x valid")
	}
}

func TestTrustVectorStatus(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]int
		want Status
	}{
		{"empty", nil, StatusNone},
		{"zeros", map[string]int{"hardware": 0, "executables": 0}, StatusNone},
		{"affirming", map[string]int{"hardware": 2, "executables": 3, "configuration": 2}, StatusAffirming},
		{"warning", map[string]int{"hardware": 2, "configuration": 36}, StatusWarning},
		{"cpu default", map[string]int{"executables": 33, "hardware": 97, "configuration": 36}, StatusContraindicated},
		{"negative", map[string]int{"sourced-data": -100, "hardware": 2}, StatusContraindicated},
	}
	for _, tt := range tests {
		var v TrustVector
		for k, val := range tt.set {
			if err := v.Set(k, val); err != nil {
				t.Fatal(err)
			}
		}
		if got := v.Status(); got != tt.want {
			t.Errorf("%s: Status = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestTrustVectorSetErrors(t *testing.T) {
	var v TrustVector
	for _, tt := range []struct {
		name string
		val  int
	}{{"filesystem", 0}, {"file_system", 0}, {"Hardware", 2}, {"hardware", 128}, {"hardware", -129}} {
		if err := v.Set(tt.name, tt.val); err == nil {
			t.Errorf("Set(%q, %d) accepted", tt.name, tt.val)
		}
	}
	if !v.IsEmpty() {
		t.Error("failed Set modified the vector")
	}
	if err := v.Set("hardware", -128); err != nil {
		t.Error(err)
	}
	if got, ok := v.Get("hardware"); !ok || got != -128 {
		t.Errorf("Get = %d %v", got, ok)
	}
	if !IsClaimName("sourced-data") || IsClaimName("nope") {
		t.Error("IsClaimName")
	}
}

func TestTrustVectorJSON(t *testing.T) {
	all := TrustVector{}
	for i, n := range ClaimNames() {
		if err := all.Set(n, i); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		v    TrustVector
		want string
	}{
		{TrustVector{}, `{}`},
		{all, `{"instance-identity":0,"configuration":1,"executables":2,"file-system":3,"hardware":4,"runtime-opaque":5,"storage-opaque":6,"sourced-data":7}`},
		{TrustVector{Hardware: i8(97), Executables: i8(33), Configuration: i8(36)}, `{"configuration":36,"executables":33,"hardware":97}`},
		{TrustVector{SourcedData: i8(-1)}, `{"sourced-data":-1}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("got %s, want %s", b, tt.want)
		}
		var back TrustVector
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, tt.v) {
			t.Errorf("round trip of %s differs", b)
		}
	}
	for _, bad := range []string{`{"bogus":1}`, `{"hardware":300}`, `{"hardware":1.5}`, `[]`} {
		var v TrustVector
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func selfSigned(t testing.TB, k crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigil test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadEvidence(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sampleSubmods(t testing.TB) map[string]Submod {
	var v TrustVector
	for k, val := range map[string]int{"executables": 3, "hardware": 2, "configuration": 2,
		"file-system": 0, "instance-identity": 0, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0} {
		if err := v.Set(k, val); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]Submod{"cpu0": {
		TrustVector:       v,
		PolicyID:          "default",
		AnnotatedEvidence: loadEvidence(t, "sample_input.json"),
		Extensions: map[string]any{
			"ear.trustee.identifiers": map[string]any{"validated": map[string]any{"container_images": []any{"a<b>&c"}}},
			"ear.dropped":             nil,
		},
	}}
}

// splitToken decodes the three parts of a compact JWS.
func splitToken(t *testing.T, tok string) (header, payload map[string]any, raw [3][]byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		raw[i] = b
	}
	if err := json.Unmarshal(raw[0], &header); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw[1], &payload); err != nil {
		t.Fatal(err)
	}
	return header, payload, raw
}

func TestIssueVerifiesWithGoJose(t *testing.T) {
	key := newKey(t)
	now := time.Unix(1760426134, 0)
	b, err := NewBroker(BrokerConfig{Signer: key, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.Issue(sampleSubmods(t))
	if err != nil {
		t.Fatal(err)
	}

	header, payload, raw := splitToken(t, tok)
	if len(raw[2]) != 64 {
		t.Errorf("signature is %d bytes, want 64", len(raw[2]))
	}
	if !bytes.HasPrefix(raw[0], []byte(`{"typ":"JWT","alg":"ES256","jwk":{`)) {
		t.Errorf("header = %s", raw[0])
	}
	jwk := header["jwk"].(map[string]any)
	for k, want := range map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256"} {
		if jwk[k] != want {
			t.Errorf("jwk.%s = %v", k, jwk[k])
		}
	}
	if _, ok := jwk["x5c"]; ok {
		t.Error("x5c without a chain")
	}
	if !reflect.DeepEqual(jwk, toAny(t, b.PublicJWK())) {
		t.Errorf("header jwk %v != PublicJWK %v", jwk, b.PublicJWK())
	}

	// Independent verification against the header's own jwk.
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	hk := jws.Signatures[0].Header.JSONWebKey
	if hk == nil {
		t.Fatal("go-jose found no header jwk")
	}
	verified, err := jws.Verify(hk)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !bytes.Equal(verified, raw[1]) {
		t.Error("verified payload differs")
	}
	if !hk.Key.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("header jwk is not the signer's key")
	}
	// A different key must not verify.
	if _, err := jws.Verify(&newKey(t).PublicKey); err == nil {
		t.Error("verified with a foreign key")
	}

	// Payload member order and content.
	keys := topLevelKeys(t, raw[1])
	if want := []string{"eat_profile", "iat", "ear.verifier-id", "submods", "exp", "iss"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("payload keys %v, want %v", keys, want)
	}
	if payload["iat"].(float64) != 1760426134 || payload["exp"].(float64) != 1760426134+300 {
		t.Errorf("iat/exp = %v/%v", payload["iat"], payload["exp"])
	}
	if payload["iss"] != DefaultIssuer || payload["eat_profile"] != DefaultProfile {
		t.Errorf("iss/profile = %v/%v", payload["iss"], payload["eat_profile"])
	}
	vid := payload["ear.verifier-id"].(map[string]any)
	if vid["developer"] != DefaultDeveloper || vid["build"] != DefaultBuild {
		t.Errorf("verifier-id = %v", vid)
	}
	cpu0 := payload["submods"].(map[string]any)["cpu0"].(map[string]any)
	if cpu0["ear.status"] != "affirming" || cpu0["ear.appraisal-policy-id"] != "default" {
		t.Errorf("cpu0 = %v", cpu0)
	}
	if _, ok := cpu0["ear.dropped"]; ok {
		t.Error("nil extension emitted")
	}
	ids := cpu0["ear.trustee.identifiers"].(map[string]any)["validated"].(map[string]any)["container_images"].([]any)
	if ids[0] != "a<b>&c" {
		t.Errorf("extension value %v", ids)
	}
	if bytes.Contains(raw[1], []byte(`\u003c`)) {
		t.Error("payload HTML-escapes strings")
	}
	ae := cpu0["ear.veraison.annotated-evidence"].(map[string]any)
	if ae["sample"].(map[string]any)["svn"] != "1" {
		t.Errorf("annotated evidence = %v", ae)
	}

	// The typed Payload decodes the same token.
	var p Payload
	if err := json.Unmarshal(raw[1], &p); err != nil {
		t.Fatal(err)
	}
	sm := p.Submods["cpu0"]
	if sm.Status != StatusAffirming || sm.TrustVector.Hardware == nil || *sm.TrustVector.Hardware != 2 ||
		sm.Extensions["ear.trustee.identifiers"] == nil || p.Expiry != p.IssuedAt+300 {
		t.Errorf("typed payload = %+v", p)
	}

	var jwks struct{ Keys []map[string]any }
	if err := json.Unmarshal(b.JWKS(), &jwks); err != nil || len(jwks.Keys) != 1 || !reflect.DeepEqual(jwks.Keys[0], jwk) {
		t.Errorf("JWKS = %s (%v)", b.JWKS(), err)
	}
}

func toAny(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func topLevelKeys(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestIssueCustomConfigAndChain(t *testing.T) {
	key := newKey(t)
	cert := selfSigned(t, key)
	ca := selfSigned(t, newKey(t))
	clock := time.Unix(1000, 0)
	b, err := NewBroker(BrokerConfig{
		Signer: key, CertChain: []*x509.Certificate{cert, ca}, CertURL: "https://as.example/certs",
		Issuer: "my-as", Developer: "dev", Build: "b1", Profile: "p", Duration: time.Hour,
		Now: func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.Issue(map[string]Submod{"gpu0": {Status: StatusWarning, PolicyID: "default"}, "cpu0": {PolicyID: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	header, payload, _ := splitToken(t, tok)
	jwk := header["jwk"].(map[string]any)
	x5c := jwk["x5c"].([]any)
	if len(x5c) != 2 || x5c[0] != base64.StdEncoding.EncodeToString(cert.Raw) || x5c[1] != base64.StdEncoding.EncodeToString(ca.Raw) {
		t.Errorf("x5c = %v", x5c)
	}
	if jwk["x5u"] != "https://as.example/certs" {
		t.Errorf("x5u = %v", jwk["x5u"])
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(jws.Signatures[0].Header.JSONWebKey); err != nil {
		t.Fatal(err)
	}
	if certs := jws.Signatures[0].Header.JSONWebKey.Certificates; len(certs) != 2 || !certs[0].Equal(cert) {
		t.Errorf("go-jose certificates = %d", len(certs))
	}
	if payload["iss"] != "my-as" || payload["eat_profile"] != "p" || payload["iat"].(float64) != 1000 || payload["exp"].(float64) != 4600 {
		t.Errorf("payload = %v", payload)
	}
	subs := payload["submods"].(map[string]any)
	if subs["gpu0"].(map[string]any)["ear.status"] != "warning" || subs["cpu0"].(map[string]any)["ear.status"] != "none" {
		t.Errorf("submods = %v", subs)
	}
	if v := subs["cpu0"].(map[string]any)["ear.trustworthiness-vector"]; !reflect.DeepEqual(v, map[string]any{}) {
		t.Errorf("empty vector = %v", v)
	}

	// The clock is read per token.
	clock = time.Unix(2000, 0)
	tok2, _ := b.Issue(map[string]Submod{"cpu0": {}})
	_, p2, _ := splitToken(t, tok2)
	if p2["iat"].(float64) != 2000 {
		t.Errorf("iat = %v", p2["iat"])
	}
}

func TestNewBrokerErrors(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	key := newKey(t)
	tests := []struct {
		name string
		cfg  BrokerConfig
	}{
		{"no signer", BrokerConfig{}},
		{"rsa", BrokerConfig{Signer: rsaKey}},
		{"p384", BrokerConfig{Signer: p384}},
		{"ed25519", BrokerConfig{Signer: edKey}},
		{"leaf mismatch", BrokerConfig{Signer: key, CertChain: []*x509.Certificate{selfSigned(t, newKey(t))}}},
		{"negative duration", BrokerConfig{Signer: key, Duration: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := NewBroker(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestIssueRejects(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Signer: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]map[string]Submod{
		"none":              nil,
		"bad status":        {"cpu0": {Status: "great"}},
		"reserved ext":      {"cpu0": {Extensions: map[string]any{"ear.status": "x"}}},
		"unencodable value": {"cpu0": {AnnotatedEvidence: map[string]any{"f": func() {}}}},
		"empty name":        {"": {}},
	}
	for name, subs := range tests {
		if _, err := b.Issue(subs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The broker still works after a failed issue (pooled buffer reset).
	if _, err := b.Issue(map[string]Submod{"cpu0": {}}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSigner(t *testing.T) {
	key := newKey(t)
	pk8, _ := x509.MarshalPKCS8PrivateKey(key)
	sec1, _ := x509.MarshalECPrivateKey(key)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edder, _ := x509.MarshalPKCS8PrivateKey(ed)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	params := enc("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	for name, in := range map[string][]byte{
		"pkcs8":        enc("PRIVATE KEY", pk8),
		"sec1":         enc("EC PRIVATE KEY", sec1),
		"ecparam+sec1": append(params, enc("EC PRIVATE KEY", sec1)...),
	} {
		s, err := LoadSigner(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !s.Public().(*ecdsa.PublicKey).Equal(&key.PublicKey) {
			t.Errorf("%s: wrong key", name)
		}
	}
	for name, in := range map[string][]byte{
		"empty":   nil,
		"p384":    enc("PRIVATE KEY", p384der),
		"ed25519": enc("PRIVATE KEY", edder),
		"cert":    enc("CERTIFICATE", []byte{1}),
		"garbage": enc("PRIVATE KEY", []byte{1, 2, 3}),
		"not pem": []byte("hello"),
	} {
		if _, err := LoadSigner(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSubmodJSONRoundTrip(t *testing.T) {
	sm := sampleSubmods(t)["cpu0"]
	b, err := json.Marshal(sm)
	if err != nil {
		t.Fatal(err)
	}
	var back Submod
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Status != StatusAffirming || !reflect.DeepEqual(back.TrustVector, sm.TrustVector) ||
		back.PolicyID != "default" || len(back.Extensions) != 1 {
		t.Errorf("round trip = %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"ear.status":"meh"}`), &back); err == nil {
		t.Error("bad status accepted")
	}
}

func benchIssue(b *testing.B, evidence map[string]any) {
	key := newKey(b)
	br, err := NewBroker(BrokerConfig{Signer: key})
	if err != nil {
		b.Fatal(err)
	}
	var v TrustVector
	_ = v.Set("hardware", 2)
	_ = v.Set("executables", 3)
	_ = v.Set("configuration", 2)
	subs := map[string]Submod{"cpu0": {TrustVector: v, PolicyID: "default", AnnotatedEvidence: evidence}}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		tok, err := br.Issue(subs)
		if err != nil {
			b.Fatal(err)
		}
		n = len(tok)
	}
	b.ReportMetric(float64(n), "token-bytes")
}

func BenchmarkIssue(b *testing.B) {
	b.Run("sample", func(b *testing.B) { benchIssue(b, loadEvidence(b, "sample_input.json")) })
	b.Run("tdx20KB", func(b *testing.B) { benchIssue(b, loadEvidence(b, "tdx_input.json")) })
}
