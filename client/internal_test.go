package client

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseResourceURI(t *testing.T) {
	tests := []struct {
		in      string
		want    ResourceURI
		rel     string
		wantErr bool
	}{
		{in: "default/key/1", want: ResourceURI{"resource", []string{"default", "key", "1"}, ""}, rel: "resource/default/key/1"},
		{in: "repo/type/tag?a=b&c", want: ResourceURI{"resource", []string{"repo", "type", "tag"}, "a=b&c"}, rel: "resource/repo/type/tag?a=b&c"},
		{in: "/a/b/c", want: ResourceURI{"resource", []string{"", "a", "b", "c"}, ""}, rel: "resource//a/b/c"},
		{in: "kbs:///default/key/1", want: ResourceURI{"resource", []string{"default", "key", "1"}, ""}, rel: "resource/default/key/1"},
		{in: "kbs://example.org:8080/r/t/g", want: ResourceURI{"resource", []string{"r", "t", "g"}, ""}, rel: "resource/r/t/g"},
		{in: "kbs+resource:///r/t/g", want: ResourceURI{"resource", []string{"r", "t", "g"}, ""}, rel: "resource/r/t/g"},
		{in: "kbs+pkcs11:///x/y?label=k 1", want: ResourceURI{"pkcs11", []string{"x", "y"}, "label=k 1"}, rel: "pkcs11/x/y?label=k 1"},
		{in: "a b/c%/d", want: ResourceURI{"resource", []string{"a b", "c%", "d"}, ""}, rel: "resource/a%20b/c%25/d"},
		{in: "kbs+:///a", wantErr: true},
		{in: "https:///a", wantErr: true},
		{in: "kbs://host", wantErr: true},
		{in: "", wantErr: true},
		{in: "kbs:///", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseResourceURI(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseResourceURI(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseResourceURI(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if rel := got.relative(); rel != tt.rel {
			t.Errorf("ParseResourceURI(%q).relative() = %q, want %q", tt.in, rel, tt.rel)
		}
	}
}

func TestSelectedHashAlgorithm(t *testing.T) {
	tests := []struct {
		extra   string
		want    string
		wantErr string
	}{
		{`""`, "sha384", ""},
		{`null`, "sha384", ""},
		{`{}`, "sha384", ""},
		{`[]`, "sha384", ""},
		{`{"other":1}`, "sha384", ""},
		{`{"selected-hash-algorithm":"sha256"}`, "sha256", ""},
		{`{"selected-hash-algorithm":"SHA512"}`, "sha512", ""},
		{`{"selected-hash-algorithm":"sha384"}`, "sha384", ""},
		{`{"selected-hash-algorithm":"sm3"}`, "", "not supported"},
		{`{"selected-hash-algorithm":"md5"}`, "", "unknown hash algorithm"},
		{`{"selected-hash-algorithm":5}`, "", "not a string"},
	}
	for _, tt := range tests {
		got, err := SelectedHashAlgorithm(json.RawMessage(tt.extra))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error = %v, want %q", tt.extra, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.extra, got, err, tt.want)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		body    string
		wantErr bool
	}{
		{`{"nonce":"abc","extra-params":""}`, false},
		{`{"nonce":"abc","extra-params":{"selected-hash-algorithm":"sha512"}}`, false},
		{`{"nonce":"abc","extra-params":null}`, false},
		{`{"nonce":"abc"}`, true},
		{`{"extra-params":""}`, true},
		{`{"nonce":5,"extra-params":""}`, true},
		{`not json`, true},
	}
	for _, tt := range tests {
		_, err := parseChallenge([]byte(tt.body))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseChallenge(%s) error = %v, wantErr %v", tt.body, err, tt.wantErr)
		}
	}
}

func jwt(payload string) string {
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

func TestParseTokenTimes(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := []struct {
		name      string
		token     string
		wantErr   bool
		wantValid bool
	}{
		{"no times", jwt(`{}`), false, true},
		{"valid window", jwt(`{"exp":1000001,"nbf":999999,"iat":999999}`), false, true},
		{"exp equals now", jwt(`{"exp":1000000}`), false, true},
		{"expired", jwt(`{"exp":999999}`), false, false},
		{"not yet valid", jwt(`{"nbf":1000001}`), false, false},
		{"float exp", jwt(`{"exp":1000001.5}`), true, false},
		{"exponent exp", jwt(`{"exp":1e7}`), true, false},
		{"string exp", jwt(`{"exp":"1000001"}`), true, false},
		{"negative nbf", jwt(`{"nbf":-1}`), true, false},
		{"iss not string", jwt(`{"iss":1}`), true, false},
		{"aud list", jwt(`{"aud":["a","b"]}`), false, true},
		{"aud number", jwt(`{"aud":1}`), true, false},
		{"payload array", jwt(`[]`), true, false},
		{"one segment", "abc", true, false},
		{"padded payload", "a." + base64.URLEncoding.EncodeToString([]byte(`{"a":1}`)) + ".s", true, false},
		{"std alphabet", "a." + base64.RawStdEncoding.EncodeToString([]byte(`{"n":"??>"}`)) + ".s", true, false},
	}
	for _, tt := range tests {
		got, err := parseTokenTimes(tt.token)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && got.valid(now) != tt.wantValid {
			t.Errorf("%s: valid = %v, want %v", tt.name, got.valid(now), tt.wantValid)
		}
	}
}

func TestReadLimited(t *testing.T) {
	if _, err := readLimited(strings.NewReader("12345"), 5); err != nil {
		t.Errorf("5 bytes with limit 5: %v", err)
	}
	if _, err := readLimited(strings.NewReader("123456"), 5); err == nil {
		t.Error("6 bytes with limit 5: no error")
	}
}

func TestServerErrorText(t *testing.T) {
	e := newServerError(401, []byte(`{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access denied by policy"}`))
	msg := e.Error()
	for _, want := range []string{`Request Failed, Response: "{\"type\":`, "Access denied by policy", "HTTP 401"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	if !e.HasErrorInformation() {
		t.Error("ErrorInformation not parsed")
	}
	if newServerError(500, []byte("oops")).HasErrorInformation() {
		t.Error("plain text parsed as ErrorInformation")
	}
	if newServerError(401, []byte(`{"type":"x"}`)).HasErrorInformation() {
		t.Error("ErrorInformation without detail accepted")
	}
}
