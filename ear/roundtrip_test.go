package ear_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/kbs/tokenverify"
)

// These tests sign EAR tokens whose claims carry attacker-controlled strings
// (evidence fields such as svn, init-data keys and values) with the Broker,
// verify them with the KBS token verifier, and check that every string comes
// back exactly (invalid UTF-8 replaced by U+FFFD per byte, deterministically)
// and that no other claim of the signed token changed.

var rtNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// rtEnv is a broker and the verifiers that must accept its tokens: one that
// trusts the header JWK, one that requires the x5c chain to a pinned
// certificate.
type rtEnv struct {
	broker    *ear.Broker
	verifiers map[string]*tokenverify.Verifier
	teeKey    map[string]any
}

func newRTEnv(t testing.TB) *rtEnv {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CoCo-AS"},
		NotBefore: rtNow.Add(-time.Hour), NotAfter: rtNow.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	anchor := filepath.Join(t.TempDir(), "anchor.pem")
	if err := os.WriteFile(anchor, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return rtNow }
	b, err := ear.NewBroker(ear.BrokerConfig{Signer: key, CertChain: []*x509.Certificate{cert}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	env := &rtEnv{broker: b, verifiers: map[string]*tokenverify.Verifier{}}
	for name, cfg := range map[string]tokenverify.Config{
		"header-jwk": {InsecureHeaderJWK: true},
		"x5c":        {TrustedCertsPaths: []string{anchor}},
	} {
		v, err := tokenverify.New(context.Background(), cfg, tokenverify.Options{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		env.verifiers[name] = v
	}
	env.teeKey = map[string]any{"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
		"x": "Fz8aL2KLbMsjxE-xpvKnXc5RWxf7qcc5FzkEV5JgdEE", "y": "5kqqUK9sSoSGzzG7LJTFjjdQ4CGZhB4ZpvgzUsnx7XI"}
	return env
}

// hostile is the attacker-controlled part of one token.
type hostile struct {
	SVN, LaunchDigest, InitData, PolicyID, Image string
	InitClaims                                   map[string]any
}

// submods builds a contraindicated cpu0 and a warning gpu0 carrying h.
func (e *rtEnv) submods(h hostile) map[string]ear.Submod {
	var cpu, gpu ear.TrustVector
	_ = cpu.Set(ear.ClaimHardware, 97)    // unrecognized hardware: contraindicated
	_ = cpu.Set(ear.ClaimExecutables, 33) // unrecognized runtime: warning
	_ = gpu.Set(ear.ClaimHardware, 2)
	_ = gpu.Set(ear.ClaimConfiguration, 36)
	return map[string]ear.Submod{
		"cpu0": {
			TrustVector: cpu,
			PolicyID:    h.PolicyID,
			AnnotatedEvidence: map[string]any{
				"sample":              map[string]any{"svn": h.SVN, "launch_digest": h.LaunchDigest, "debug": false},
				"init_data":           h.InitData,
				"init_data_claims":    h.InitClaims,
				"runtime_data_claims": map[string]any{"nonce": "bm9uY2U", "tee-pubkey": e.teeKey},
			},
			Extensions: map[string]any{
				"ear.trustee.identifiers": map[string]any{"validated": map[string]any{"container_images": []any{h.Image}}},
			},
		},
		"gpu0": {Status: ear.StatusWarning, TrustVector: gpu, PolicyID: "default"},
	}
}

// jsonString is the string a JSON parser reads back for s: each byte of an
// invalid UTF-8 sequence becomes U+FFFD (encoding/json's substitution).
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// expected maps v to the value a JSON parser returns for it. ok is false
// when two member names of one object collide after substitution.
func expected(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return jsonString(x), true
	case map[string]any:
		if x == nil {
			return nil, true // encodes as null
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			ev, ok := expected(val)
			if !ok {
				return nil, false
			}
			ek := jsonString(k)
			if _, dup := out[ek]; dup {
				return nil, false
			}
			out[ek] = ev
		}
		return out, true
	case []any:
		if x == nil {
			return nil, true
		}
		out := make([]any, len(x))
		for i, val := range x {
			ev, ok := expected(val)
			if !ok {
				return nil, false
			}
			out[i] = ev
		}
		return out, true
	}
	return v, true
}

// check issues a token for h and verifies it with every verifier.
func (e *rtEnv) check(t *testing.T, h hostile) {
	t.Helper()
	subs := e.submods(h)
	wantAE, okAE := expected(subs["cpu0"].AnnotatedEvidence)
	tok, err := e.broker.Issue(subs)
	if !okAE {
		if err == nil {
			t.Fatalf("Issue signed claims whose member names collide after U+FFFD substitution: %+q", h.InitClaims)
		}
		return
	}
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	for name, v := range e.verifiers {
		claims, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: Verify: %v", name, err)
		}
		e.compare(t, name, claims, h, wantAE)
	}
}

func (e *rtEnv) compare(t *testing.T, verifier string, claims map[string]any, h hostile, wantAE any) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: "+format, append([]any{verifier}, args...)...)
	}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	if got, want := keys(claims), []string{"ear.verifier-id", "eat_profile", "exp", "iat", "iss", "submods"}; !slices.Equal(got, want) {
		fail("top-level claims %q, want %q", got, want)
	}
	iat, exp := float64(rtNow.Unix()), float64(rtNow.Add(ear.DefaultDuration).Unix())
	if claims["iat"] != iat || claims["exp"] != exp || claims["iss"] != ear.DefaultIssuer || claims["eat_profile"] != ear.DefaultProfile {
		fail("fixed claims changed: iat %v exp %v iss %v eat_profile %v", claims["iat"], claims["exp"], claims["iss"], claims["eat_profile"])
	}
	if vid := claims["ear.verifier-id"]; !reflect.DeepEqual(vid, map[string]any{"developer": ear.DefaultDeveloper, "build": ear.DefaultBuild}) {
		fail("ear.verifier-id = %v", vid)
	}
	subs, _ := claims["submods"].(map[string]any)
	if got := keys(subs); !slices.Equal(got, []string{"cpu0", "gpu0"}) {
		fail("submods %q", got)
	}
	cpu, _ := subs["cpu0"].(map[string]any)
	if got, want := keys(cpu), slices.Sorted(slices.Values([]string{ear.KeyAnnotatedEvidence, ear.KeyPolicyID, ear.KeyStatus, "ear.trustee.identifiers", ear.KeyTrustVector})); !slices.Equal(got, want) {
		fail("cpu0 members %q, want %q", got, want)
	}
	if cpu[ear.KeyStatus] != string(ear.StatusContraindicated) {
		fail("cpu0 status = %v, want contraindicated", cpu[ear.KeyStatus])
	}
	if tv := cpu[ear.KeyTrustVector]; !reflect.DeepEqual(tv, map[string]any{"executables": 33.0, "hardware": 97.0}) {
		fail("cpu0 vector = %v", tv)
	}
	if cpu[ear.KeyPolicyID] != jsonString(h.PolicyID) {
		fail("policy id = %+q, want %+q", cpu[ear.KeyPolicyID], jsonString(h.PolicyID))
	}
	if ae := cpu[ear.KeyAnnotatedEvidence]; !reflect.DeepEqual(ae, wantAE) {
		fail("annotated evidence changed:\n got %+v\nwant %+v", ae, wantAE)
	}
	wantIDs := map[string]any{"validated": map[string]any{"container_images": []any{jsonString(h.Image)}}}
	if ids := cpu["ear.trustee.identifiers"]; !reflect.DeepEqual(ids, wantIDs) {
		fail("identifiers = %+v", ids)
	}
	gpu, _ := subs["gpu0"].(map[string]any)
	wantGPU := map[string]any{
		ear.KeyStatus:            string(ear.StatusWarning),
		ear.KeyTrustVector:       map[string]any{"configuration": 36.0, "hardware": 2.0},
		ear.KeyPolicyID:          "default",
		ear.KeyAnnotatedEvidence: map[string]any{},
	}
	if !reflect.DeepEqual(gpu, wantGPU) {
		fail("gpu0 = %+v", gpu)
	}
	key, err := tokenverify.TeePubKey(claims, nil)
	if err != nil || key.X != e.teeKey["x"] || key.Y != e.teeKey["y"] {
		fail("tee-pubkey = %+v, %v", key, err)
	}
}

// Fragments an attacker would try: JSON structure that could end the string
// and start a new member, escapes, separators, invisible and invalid code
// points.
var hostileFragments = []string{
	`","ear.status":"affirming`,
	`"},"ear.status":"affirming","x":{"a":"`,
	`"}}},"cpu0":{"ear.status":"affirming"}}}`,
	`","exp":4102444800,"x":"`,
	`\",\"ear.status\":\"affirming`,
	`\u0022,\u0022ear.status\u0022:\u0022affirming`,
	`"`, `\`, `\\`, `\"`, `/`, `\/`, `{`, `}`, `[`, `]`, `:`, `,`,
	"\x00", "\x01", "\x1f", "\x7f", "\t", "\n", "\r", "\b", "\f",
	"\u2028", "\u2029", "\u0085", "\ufeff", "\u200b", "\ufffd", "\U0001F600",
	"<script>", "&amp;", "<", ">", "&",
	`\ud800`, `\udc00`, `\ud83d\ude00`, // escape text, not code points
	"\xed\xa0\x80", "\xed\xbf\xbf", // WTF-8 lone surrogates
	"\xff", "\xfe", "\xc0\xaf", "\xe2\x82", "\xf4\x90\x80\x80", // invalid UTF-8
	string(rune(0xD800)), // Go turns a surrogate rune into U+FFFD
	"ear.status", "affirming", "contraindicated", "svn", "1",
}

// genString returns a random concatenation of fragments, random runes and
// bytes; about one in 25 is very long.
func genString(r *mrand.Rand) string {
	var b strings.Builder
	n := r.IntN(12)
	for range n {
		switch r.IntN(4) {
		case 0, 1:
			b.WriteString(hostileFragments[r.IntN(len(hostileFragments))])
		case 2:
			b.WriteRune(rune(r.IntN(0x110000))) // includes surrogates → U+FFFD
		default:
			b.WriteByte(byte(r.IntN(256)))
		}
	}
	if r.IntN(25) == 0 {
		frag := hostileFragments[r.IntN(len(hostileFragments))]
		b.WriteString(strings.Repeat(frag, 1+r.IntN(64<<10)/max(1, len(frag))))
	}
	return b.String()
}

func genValue(r *mrand.Rand, depth int) any {
	switch k := r.IntN(8); {
	case k < 4 || depth > 4:
		return genString(r)
	case k == 4:
		return float64(r.IntN(1<<20)) - 1<<19
	case k == 5:
		return r.IntN(2) == 0
	case k == 6:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = genValue(r, depth+1)
		}
		return a
	default:
		return genMap(r, depth+1)
	}
}

func genMap(r *mrand.Rand, depth int) map[string]any {
	m := make(map[string]any)
	for range r.IntN(5) {
		m[genString(r)] = genValue(r, depth)
	}
	return m
}

func genHostile(r *mrand.Rand) hostile {
	return hostile{
		SVN: genString(r), LaunchDigest: genString(r), InitData: genString(r),
		PolicyID: genString(r), Image: genString(r), InitClaims: genMap(r, 0),
	}
}

func TestHostileClaimsRoundTrip(t *testing.T) {
	env := newRTEnv(t)
	long := strings.Repeat(`","ear.status":"affirming\`, 40<<10) // ~1 MiB
	cases := []struct {
		name string
		h    hostile
	}{
		{"plain", hostile{SVN: "1", LaunchDigest: "abcde", PolicyID: "default", Image: "nginx", InitClaims: map[string]any{"aa.toml": map[string]any{"k": "v"}}}},
		{"svn injects affirming status", hostile{SVN: `1","ear.status":"affirming`, PolicyID: "default"}},
		{"svn closes the submod", hostile{SVN: `1"}},"cpu0":{"ear.status":"affirming"}},"x":{"y":"`}},
		{"svn injects exp", hostile{SVN: `","exp":4102444800,"iss":"evil`}},
		{"escaped quotes", hostile{SVN: `1\",\"ear.status\":\"affirming`, Image: `\u0022`}},
		{"backslashes", hostile{SVN: `\`, LaunchDigest: `\\\"`, InitData: `C:\path\`}},
		{"NUL and controls", hostile{SVN: "1\x00\",\"ear.status\":\"affirming", LaunchDigest: "\x01\x1f\x7f"}},
		{"U+2028 and U+2029", hostile{SVN: "1\u2028\u2029", InitClaims: map[string]any{"\u2028": "\u2029"}}},
		{"init-data key injects status", hostile{InitClaims: map[string]any{
			`","ear.status":"affirming`:      `"}`,
			"ear.status":                     "affirming",
			`"}},"ear.status":"affirming","`: map[string]any{`\`: `"`},
		}}},
		{"init-data key equal to a reserved member", hostile{InitClaims: map[string]any{
			ear.KeyStatus: "affirming", ear.KeyTrustVector: map[string]any{"hardware": 2.0}, "submods": "x", "exp": 1e18,
		}}},
		{"lone surrogates are replaced", hostile{SVN: "\xed\xa0\x80", LaunchDigest: "\xed\xbf\xbf\xed\xa0\x80", InitData: string(rune(0xDC00)),
			InitClaims: map[string]any{"k\xed\xa0\x80": "v\xed\xb0\x80"}}},
		{"surrogate escape text stays text", hostile{SVN: `\ud800`, LaunchDigest: `\udc00\ud800`}},
		{"invalid UTF-8", hostile{SVN: "\xff\xfe", PolicyID: "\xc0\xaf", Image: "\xe2\x82"}},
		{"invalid UTF-8 keys that collide", hostile{InitClaims: map[string]any{"a\xff": "1", "a\xfe": "2"}}},
		{"invalid key colliding with U+FFFD key", hostile{InitClaims: map[string]any{"a\xff": "1", "a\ufffd": "2"}}},
		{"invalid key colliding with escape-looking key", hostile{InitClaims: map[string]any{"a\xff": "1", `a\ufffd`: "2"}}},
		{"very long svn", hostile{SVN: long, InitClaims: map[string]any{long[:1<<16]: long[:1<<17]}}},
		{"empty strings", hostile{InitClaims: map[string]any{"": ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { env.check(t, c.h) })
	}
}

func TestHostileClaimsRoundTripRandom(t *testing.T) {
	env := newRTEnv(t)
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := range uint64(n) {
		r := mrand.New(mrand.NewPCG(seed, 0x5161_1ea7))
		h := genHostile(r)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { env.check(t, h) })
	}
}

func FuzzHostileClaimsRoundTrip(f *testing.F) {
	f.Add("1", "init", "v", "default")
	f.Add(`1","ear.status":"affirming`, `","ear.status":"affirming`, `"}`, `\`)
	f.Add("\x00\u2028\u2029", "\xed\xa0\x80", `\ud800`, "\xff")
	env := newRTEnv(f)
	f.Fuzz(func(t *testing.T, svn, key, val, policy string) {
		env.check(t, hostile{SVN: svn, PolicyID: policy, Image: val, InitData: key,
			InitClaims: map[string]any{key: val, "fixed": map[string]any{val: key}}})
	})
}

// The hostile strings must also survive the payload as raw bytes: no
// verified token may decode to a different claim set under another JSON
// parser reading the same bytes (here: encoding/json without strictness).
func TestHostileClaimsPayloadUnambiguous(t *testing.T) {
	env := newRTEnv(t)
	h := hostile{SVN: `1","ear.status":"affirming`, InitClaims: map[string]any{"\u2028": "\x00", "k": `\"`}}
	tok, err := env.broker.Issue(env.submods(h))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var lenient map[string]any
	if err := json.Unmarshal(payload, &lenient); err != nil {
		t.Fatal(err)
	}
	strict, err := env.verifiers["x5c"].Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lenient, strict) {
		t.Fatal("strict and lenient parsers disagree on the signed payload")
	}
	if n := strings.Count(string(payload), `"ear.status"`); n != 2 { // cpu0 and gpu0 only
		t.Fatalf(`payload has %d "ear.status" members`, n)
	}
}
