package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type inner struct {
	Nonce string `json:"nonce"`
}

type outer struct {
	Version string          `json:"version"`
	Tee     string          `json:"tee"`
	Extra   json.RawMessage `json:"extra-params"`
	Inner   inner           `json:"runtime-data"`
	List    []inner         `json:"list"`
	Map     map[string]inner
	Ptr     *inner `json:"ptr"`
	Skip    string `json:"-"`
	embedded
}

type embedded struct {
	Flag bool `json:"flag"`
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		want     string
	}{
		{"object", `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, true, ""},
		{"whitespace", " \t\n{ \"a\" : [ 1 , 2 ] } \r\n", true, ""},
		{"numbers", `[0,-0,1.5,-2e10,3E+2,4e-3,123456789012345678901234567890]`, true, ""},
		{"escapes", `"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`, true, ""},
		{"utf8", `"héllo wörld ✓ 😀"`, true, ""},
		{"u2028 raw", "\"a\u2028b\"", true, ""},
		{"nul escape", `"a\u0000b"`, true, ""},
		{"same name in sibling objects", `[{"a":1},{"a":2}]`, true, ""},
		{"same name nested", `{"a":{"a":1}}`, true, ""},
		{"duplicate", `{"a":1,"a":2}`, false, `duplicate member "a"`},
		{"duplicate nested", `{"x":[{"tee":1,"tee":2}]}`, false, `duplicate member "tee" at $["x"][0]`},
		{"duplicate after unescape", `{"a":1,"\u0061":2}`, false, "duplicate member"},
		{"invalid utf8", "{\"a\":\"\xff\"}", false, "invalid UTF-8"},
		{"invalid utf8 name", "{\"\xc3\x28\":1}", false, "invalid UTF-8"},
		{"overlong utf8", "\"\xc0\xaf\"", false, "invalid UTF-8"},
		{"encoded surrogate utf8", "\"\xed\xa0\x80\"", false, "invalid UTF-8"},
		{"lone leading surrogate", `"\ud800"`, false, "lone leading surrogate"},
		{"leading then text", `"\ud800x"`, false, "lone leading surrogate"},
		{"leading twice", `"\ud800\ud800"`, false, "lone leading surrogate"},
		{"lone trailing surrogate", `"\udc00"`, false, "lone trailing surrogate"},
		{"control char", "\"a\tb\"", false, "control character"},
		{"bad escape", `"\x41"`, false, "invalid escape"},
		{"short unicode", `"\u12"`, false, "escape"},
		{"trailing data", `{} {}`, false, "trailing data"},
		{"trailing comma", `[1,]`, false, "unexpected character"},
		{"leading zero", `01`, false, "trailing data"},
		{"bare minus", `-`, false, "invalid number"},
		{"dot no digits", `1.`, false, "invalid number"},
		{"exp no digits", `1e`, false, "invalid number"},
		{"single quotes", `{'a':1}`, false, "member name"},
		{"nan", `NaN`, false, "unexpected character"},
		{"empty", ``, false, "unexpected end"},
		{"unterminated", `{"a":"b`, false, "unterminated string"},
		{"unterminated object", `{"a":1`, false, "unterminated object"},
		{"bad literal", `tru`, false, "invalid literal"},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false, "nesting deeper"},
		{"max depth", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate([]byte(c.in))
			if c.ok {
				if err != nil {
					t.Fatalf("Validate(%q) = %v", c.in, err)
				}
				if !json.Valid([]byte(c.in)) {
					t.Fatalf("accepted what encoding/json calls invalid: %q", c.in)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate(%q) = %v, want an ErrInvalid containing %q", c.in, err, c.want)
			}
		})
	}
}

func TestUnmarshalNames(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // "" = accepted
	}{
		{"exact", `{"version":"0.4.0","tee":"sample","extra-params":"","runtime-data":{"nonce":"n"}}`, ""},
		{"unknown ignored", `{"version":"v","unknown":1,"Unknown2":{"Nonce":1}}`, ""},
		{"top-level case", `{"Version":"0.4.0"}`, `unknown member "Version"`},
		{"upper case", `{"TEE":"sample"}`, `unknown member "TEE"`},
		{"nested struct", `{"runtime-data":{"NONCE":"n"}}`, `unknown member "NONCE" (member names are case-sensitive; the field is "nonce") at $["runtime-data"]`},
		{"slice elem", `{"list":[{"nonce":"a"},{"Nonce":"b"}]}`, `at $["list"][1]`},
		{"map value", `{"Map":{"k":{"nOnce":"x"}}}`, `unknown member "nOnce"`},
		{"untagged field exact", `{"Map":{}}`, ""},
		{"untagged field case", `{"map":{}}`, `unknown member "map"`},
		{"pointer", `{"ptr":{"Nonce":"x"}}`, `unknown member "Nonce"`},
		{"raw message not checked", `{"extra-params":{"Anything":1}}`, ""},
		{"raw message still strict", `{"extra-params":{"a":1,"a":2}}`, "duplicate member"},
		{"skipped field", `{"Skip":"x"}`, ""},
		{"embedded", `{"flag":true}`, ""},
		{"embedded case", `{"Flag":true}`, `unknown member "Flag"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v outer
			err := Unmarshal([]byte(c.in), &v)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Unmarshal(%s) = %v", c.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unmarshal(%s) = %v, want error containing %q", c.in, err, c.want)
			}
		})
	}
	var v outer
	if err := Unmarshal([]byte(`{"version":"0.4.0","runtime-data":{"nonce":"n"},"flag":true}`), &v); err != nil ||
		v.Version != "0.4.0" || v.Inner.Nonce != "n" || !v.Flag {
		t.Fatalf("decoded %+v, %v", v, err)
	}
}

// selfDecoding types are not name-checked by Unmarshal (they decode their
// own members) but the text is still validated.
type selfDecoding struct{ Got string }

func (s *selfDecoding) UnmarshalJSON(b []byte) error { s.Got = string(b); return nil }

func TestUnmarshalerStopsNameChecks(t *testing.T) {
	var v struct {
		S selfDecoding `json:"s"`
	}
	if err := Unmarshal([]byte(`{"s":{"Any":1}}`), &v); err != nil || v.S.Got != `{"Any":1}` {
		t.Fatalf("%v %+v", err, v)
	}
	if err := Unmarshal([]byte(`{"s":{"a":1,"a":1}}`), &v); err == nil {
		t.Fatal("duplicate inside a self-decoding value accepted")
	}
}

func TestUnmarshalNumbers(t *testing.T) {
	var v map[string]any
	if err := UnmarshalNumbers([]byte(`{"n":12345678901234567890}`), &v); err != nil {
		t.Fatal(err)
	}
	if n, ok := v["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Fatalf("%#v", v["n"])
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"x",{"b":null}]`, `"\ud83d\ude00"`, `{"a":1,"a":2}`, "\"\xff\"", `1e5`, `{"version":"0.4.0","tee":"sample","extra-params":""}`, `1E1000`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Validate(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		// Strict JSON is JSON, and it decodes to a value that re-encodes
		// to JSON that is strict again, with the same meaning.
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var v any
		if err := UnmarshalNumbers(data, &v); err != nil {
			t.Fatalf("encoding/json rejects %q: %v", data, err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if err := Validate(out); err != nil {
			t.Fatalf("re-encoded %q not strict: %v", out, err)
		}
		var back any
		if err := UnmarshalNumbers(out, &back); err != nil || !jsonEqual(v, back) {
			t.Fatalf("round trip changed the value: %q -> %q", data, out)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
