package jws

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/internal/strictjson"
	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws/jwstest"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// Header members that encoding/json would silently fold or overwrite must
// make the token malformed.
func TestParseStrictHeader(t *testing.T) {
	k := newKeys(t)
	jwk, err := json.Marshal(jwstest.JWK(k.p256.Public(), "ES256", ""))
	if err != nil {
		t.Fatal(err)
	}
	dupJWK := strings.Replace(string(jwk), `{`, `{"alg":"none",`, 1)
	cases := []struct {
		name    string
		header  string
		wantErr bool
	}{
		{"plain", `{"alg":"ES256","kid":"a"}`, false},
		{"with jwk", `{"alg":"ES256","jwk":` + string(jwk) + `}`, false},
		{"unknown member ignored", `{"alg":"ES256","x5t":"abc"}`, false},
		{"duplicate alg", `{"alg":"ES256","alg":"none"}`, true},
		{"duplicate kid", `{"alg":"ES256","kid":"a","kid":"b"}`, true},
		{"duplicate jwk", `{"alg":"ES256","jwk":` + string(jwk) + `,"jwk":` + string(jwk) + `}`, true},
		{"duplicate member inside jwk", `{"alg":"ES256","jwk":` + dupJWK + `}`, true},
		{"wrong-case Alg", `{"Alg":"ES256"}`, true},
		{"wrong-case Kid next to alg", `{"alg":"ES256","KID":"a"}`, true},
		{"wrong-case JWK", `{"alg":"ES256","JWK":` + string(jwk) + `}`, true},
		{"wrong-case Crit smuggles critical params", `{"alg":"ES256","Crit":["b64"]}`, true},
		{"invalid UTF-8 in kid", "{\"alg\":\"ES256\",\"kid\":\"a\xffb\"}", true},
		{"lone surrogate in kid", `{"alg":"ES256","kid":"\ud800"}`, true},
		{"trailing data", `{"alg":"ES256"} {}`, true},
		{"too deep", `{"alg":"ES256","x":` + strings.Repeat("[", strictjson.MaxDepth+1) + strings.Repeat("]", strictjson.MaxDepth+1) + `}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(b64(c.header) + ".e30.c2ln")
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// The payload is decoded strictly: a verifier must never read a claim
// different from the one every other strict parser reads.
func TestClaimsStrict(t *testing.T) {
	// MaxDepth levels in all, counting the claims object itself.
	deep := strings.Repeat(`{"a":`, strictjson.MaxDepth-1) + `1` + strings.Repeat(`}`, strictjson.MaxDepth-1)
	cases := []struct {
		name    string
		payload string
		wantErr bool
	}{
		{"plain", `{"exp":1,"submods":{"cpu0":{"ear.status":"contraindicated"}}}`, false},
		{"escaped specials", `{"exp":1,"s":"\"\\\u0000\u2028\u2029\ud83d\ude00"}`, false},
		{"deep but within the limit", `{"exp":1,"x":` + deep + `}`, false},
		{"duplicate exp", `{"exp":1,"exp":99999999999}`, true},
		{"duplicate nested status", `{"exp":1,"submods":{"cpu0":{"ear.status":"contraindicated","ear.status":"affirming"}}}`, true},
		{"duplicate submod", `{"exp":1,"submods":{"cpu0":{},"cpu0":{}}}`, true},
		{"invalid UTF-8", "{\"exp\":1,\"svn\":\"\xed\xa0\x80\"}", true},
		{"invalid UTF-8 in a name", "{\"exp\":1,\"\xff\":1}", true},
		{"lone leading surrogate", `{"exp":1,"svn":"\ud800"}`, true},
		{"lone trailing surrogate", `{"exp":1,"svn":"\udc00x"}`, true},
		{"trailing data", `{"exp":1}{"exp":2}`, true},
		{"too deep", `{"exp":1,"x":` + strings.Repeat("[", strictjson.MaxDepth) + strings.Repeat("]", strictjson.MaxDepth) + `}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := (&Token{Payload: []byte(c.payload)}).Claims()
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestParseJWKStrict(t *testing.T) {
	k := newKeys(t)
	good, err := json.Marshal(jwstest.JWK(k.p256.Public(), "ES256", "a"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := json.Marshal(jwstest.JWK(k.p384.Public(), "ES384", "a"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(other, &m); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		data    string
		wantErr bool
	}{
		{"good", string(good), false},
		{"duplicate x", strings.Replace(string(good), `{`, `{"x":"`+m["x"].(string)+`",`, 1), true},
		{"duplicate kty", strings.Replace(string(good), `{`, `{"kty":"RSA",`, 1), true},
		{"wrong-case X5C", strings.Replace(string(good), `{`, `{"X5C":["AA"],`, 1), true},
		{"wrong-case Alg", strings.Replace(string(good), `"alg"`, `"Alg"`, 1), true},
		{"invalid UTF-8 kid", strings.Replace(string(good), `"kid":"a"`, "\"kid\":\"\xff\"", 1), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseJWK([]byte(c.data))
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
		})
	}
	if _, _, err := ParseJWKSet([]byte(`{"keys":[],"keys":[` + string(good) + `]}`)); err == nil {
		t.Error("JWK set with duplicate keys member accepted")
	}
	if keys, _, err := ParseJWKSet([]byte(`{"keys":[` + string(good) + `]}`)); err != nil || len(keys) != 1 {
		t.Errorf("good set: %d keys, %v", len(keys), err)
	}
}

func TestCheckTimes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	rules := TimeRules{Leeway: DefaultLeeway, MaxLifetime: 5 * time.Minute}
	cases := []struct {
		name    string
		payload string
		rules   TimeRules
		wantErr error
	}{
		{"EAR shape", `{"iat":1800000000,"exp":1800000300}`, rules, nil},
		{"no iat, exp within lifetime", `{"exp":1800000300}`, rules, nil},
		{"nbf now", `{"nbf":1800000000,"iat":1800000000,"exp":1800000300}`, rules, nil},
		{"nbf and iat within leeway", `{"nbf":1800000060,"iat":1800000060,"exp":1800000300}`, rules, nil},
		{"lifetime at the leeway edge", `{"iat":1800000000,"exp":1800000360}`, rules, nil},
		{"fractional dates", `{"iat":1799999999.5,"exp":1800000299.5}`, rules, nil},
		{"null nbf and iat count as absent", `{"nbf":null,"iat":null,"exp":1800000300}`, rules, nil},
		{"long-lived token, lifetime unbounded", `{"iat":1800000000,"exp":1900000000}`, TimeRules{Leeway: DefaultLeeway}, nil},

		{"missing exp", `{"iat":1800000000}`, rules, ErrMissingExp},
		{"null exp", `{"exp":null}`, rules, ErrMissingExp},
		{"string exp", `{"exp":"1800000300"}`, rules, ErrMissingExp},
		{"expired", `{"iat":1799999000,"exp":1799999900}`, rules, ErrExpired},
		{"nbf in the future", `{"nbf":1800000061,"iat":1800000000,"exp":1800000300}`, rules, ErrNotYetValid},
		{"nbf far in the future", `{"nbf":1900000000,"exp":1800000300}`, rules, ErrNotYetValid},
		{"iat in the future", `{"iat":1800000061,"exp":1800000300}`, rules, ErrIssuedInFuture},
		{"iat in the future, lifetime unbounded", `{"iat":1800003600,"exp":1800003900}`, TimeRules{Leeway: DefaultLeeway}, ErrIssuedInFuture},
		{"exp - iat too long", `{"iat":1799999700,"exp":1800000061}`, rules, ErrLifetimeTooLong},
		{"exp - now too long without iat", `{"exp":1800000361}`, rules, ErrLifetimeTooLong},
		{"exp - now too long with backdated iat", `{"iat":1800000000,"exp":1800003600}`, rules, ErrLifetimeTooLong},
		{"far-future exp", `{"exp":1e300}`, rules, ErrLifetimeTooLong},
		{"string iat", `{"iat":"1800000000","exp":1800000300}`, rules, ErrInvalidTimeClaim},
		{"boolean nbf", `{"nbf":true,"exp":1800000300}`, rules, ErrInvalidTimeClaim},
		{"object iat", `{"iat":{},"exp":1800000300}`, rules, ErrInvalidTimeClaim},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := (&Token{Payload: []byte(c.payload)}).Claims()
			if err != nil {
				t.Fatal(err)
			}
			err = CheckTimes(claims, now, c.rules)
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

// CheckTimes reads json.Number claims as well (decoders using UseNumber).
func TestCheckTimesJSONNumber(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	rules := TimeRules{Leeway: DefaultLeeway, MaxLifetime: 5 * time.Minute}
	ok := map[string]any{"iat": json.Number("1800000000"), "exp": json.Number("1800000300")}
	if err := CheckTimes(ok, now, rules); err != nil {
		t.Fatal(err)
	}
	future := map[string]any{"nbf": json.Number("1900000000"), "exp": json.Number("1800000300")}
	if err := CheckTimes(future, now, rules); !errors.Is(err, ErrNotYetValid) {
		t.Fatalf("got %v", err)
	}
	bad := map[string]any{"iat": json.Number("x"), "exp": json.Number("1800000300")}
	if err := CheckTimes(bad, now, rules); !errors.Is(err, ErrInvalidTimeClaim) {
		t.Fatalf("got %v", err)
	}
}
