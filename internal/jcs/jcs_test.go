package jcs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigil-attestation/sigil/protocol"
)

func sha384Hex(b []byte) string {
	s := sha512.Sum384(b)
	return hex.EncodeToString(s[:])
}

func TestTrusteeVector(t *testing.T) {
	in := []byte(`{"b":1,"a":"test","c":{"d":"e"}}`)
	const want = `{"a":"test","b":1,"c":{"d":"e"}}`
	const wantHash = "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"

	got, err := Canonicalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Canonicalize = %s, want %s", got, want)
	}
	if h := sha384Hex(got); h != wantHash {
		t.Fatalf("SHA-384 = %s, want %s", h, wantHash)
	}

	got, err = Marshal(map[string]any{"b": 1, "a": "test", "c": map[string]any{"d": "e"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
}

// workedKey is the EC P-256 TEE key of guest-client.md §1.4: private scalar
// 0x0102…20.
func workedKey(t testing.TB) protocol.TeePubKey {
	t.Helper()
	scalar := make([]byte, 32)
	for i := range scalar {
		scalar[i] = byte(i + 1)
	}
	priv, err := ecdh.P256().NewPrivateKey(scalar)
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.PublicKey().Bytes()
	return protocol.TeePubKey{
		Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW",
		X: base64.RawURLEncoding.EncodeToString(pub[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(pub[33:65]),
	}
}

const workedNonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func TestRuntimeDataWorkedExample(t *testing.T) {
	key := workedKey(t)
	const wantJCS = `{"additional-evidence":"","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"UVw9brnjlrkE0_7Kf1T9zQzB6Ze_N13KUVrQpsO0A18","y":"RTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q"}}`
	const wantHash = "bbfe86a638421c8bde0173f4716b22a53ad22f47b8b30fc6c22046c003a08a176eebf5ac85388b4979b097ca0de723bd"
	const wantReportData = "u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9"

	// The typed key (its MarshalJSON emits kbs-types order), the generic map
	// and raw JSON must all canonicalise the same way.
	inputs := map[string]any{
		"typed key": map[string]any{"tee-pubkey": key, "nonce": workedNonce, "additional-evidence": ""},
		"map key":   map[string]any{"tee-pubkey": key.Map(), "nonce": workedNonce, "additional-evidence": ""},
		"raw key":   map[string]any{"tee-pubkey": json.RawMessage(mustJSON(t, key)), "nonce": workedNonce, "additional-evidence": ""},
		"struct": struct {
			TeePubKey protocol.TeePubKey `json:"tee-pubkey"`
			Nonce     string             `json:"nonce"`
			AddEv     string             `json:"additional-evidence"`
		}{key, workedNonce, ""},
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			got, err := Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != wantJCS {
				t.Fatalf("JCS =\n%s\nwant\n%s", got, wantJCS)
			}
			sum := sha512.Sum384(got)
			if h := hex.EncodeToString(sum[:]); h != wantHash {
				t.Fatalf("SHA-384 = %s, want %s", h, wantHash)
			}
			if rd := base64.StdEncoding.EncodeToString(sum[:]); rd != wantReportData {
				t.Fatalf("report_data = %s, want %s", rd, wantReportData)
			}
		})
	}
}

func TestRuntimeDataSampleDevice(t *testing.T) {
	key := workedKey(t)
	const wantDevice = "47a5f5e56d9e064a656c373b77acdb6d5b9b38d823586a7e79688d6ad1beb7a4b8a1865d63b7e44ab5e34ca59308d9e3"
	const wantPrimary = "86c71faf70f87f1bb1847ae44751eef15ef752afb4a6f06d90ebeaf5fa39ff84626c4449c6158f6f6522c3fd47a375a7"
	const wantA = `{"sampledevice":{"svn":"2","report_data":"R6X15W2eBkplbDc7d6zbbVubONgjWGp+eWiNatG+t6S4oYZdY7fkSrXjTKWTCNnj"}}`

	dev, err := Marshal(map[string]any{"nonce": workedNonce, "tee-pubkey": key.Map()})
	if err != nil {
		t.Fatal(err)
	}
	devSum := sha512.Sum384(dev)
	if h := hex.EncodeToString(devSum[:]); h != wantDevice {
		t.Fatalf("device SHA-384 = %s, want %s", h, wantDevice)
	}
	// The additional-evidence string embeds the device report data; it is
	// built by the client with serde (not canonical), so reproduce its text.
	a := `{"sampledevice":{"svn":"2","report_data":"` + base64.StdEncoding.EncodeToString(devSum[:]) + `"}}`
	if a != wantA {
		t.Fatalf("A = %s, want %s", a, wantA)
	}
	primary, err := Marshal(map[string]any{"additional-evidence": a, "nonce": workedNonce, "tee-pubkey": key.Map()})
	if err != nil {
		t.Fatal(err)
	}
	if h := sha384Hex(primary); h != wantPrimary {
		t.Fatalf("primary SHA-384 = %s, want %s (JCS %s)", h, wantPrimary, primary)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRFC8785Examples(t *testing.T) {
	for _, name := range []string{"rfc8785-values", "rfc8785-sorting"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", name+".out.json"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonicalize(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			// Marshal of the decoded generic value agrees.
			var v any
			if err := json.Unmarshal(in, &v); err != nil {
				t.Fatal(err)
			}
			got, err = Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestNumberFormatting uses the IEEE-754 table of RFC 8785 Appendix B.
func TestNumberFormatting(t *testing.T) {
	tests := []struct {
		bits string
		want string // "" = must be rejected
	}{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"7fffffffffffffff", ""},
		{"7ff0000000000000", ""},
		{"fff0000000000000", ""},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	for _, tt := range tests {
		t.Run(tt.bits, func(t *testing.T) {
			raw, err := hex.DecodeString(tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			f := math.Float64frombits(binary.BigEndian.Uint64(raw))
			got, err := Marshal(f)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidNumber) {
					t.Fatalf("Marshal(%v) = %s, %v; want ErrInvalidNumber", f, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal(%v) = %s, want %s", f, got, tt.want)
			}
			// Re-parsing the canonical text is a fixed point and yields the same double.
			again, err := Canonicalize(got)
			if err != nil || string(again) != tt.want {
				t.Fatalf("Canonicalize(%s) = %s, %v", got, again, err)
			}
			// Shortest round trip.
			var back float64
			if err := json.Unmarshal(got, &back); err != nil || back != f && !(f == 0 && back == 0) {
				t.Fatalf("%s parses to %v (%v), want %v", got, back, err, f)
			}
		})
	}
}

func TestNumberText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1", "1"},
		{"-0", "0"},
		{"-0.0e5", "0"},
		{"1.0", "1"},
		{"1E2", "100"},
		{"1e21", "1e+21"},
		{"123456789012345678901", "123456789012345680000"},
		{"9007199254740993", "9007199254740992"},
		{"0.1", "0.1"},
		{"1e-7", "1e-7"},
		{"0.000001", "0.000001"},
		{"-1.5e-7", "-1.5e-7"},
		{"1e-400", "0"},
		{"123e-2", "1.23"},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
		got, err = Marshal(json.Number(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Marshal(json.Number(%s)) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestStringEscaping(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`"`, `"\""`},
		{`\`, `"\\"`},
		{"/", `"/"`},
		{"<>&", `"<>&"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"\u0080é€😀", "\"\u0080é€😀\""},
		{"\uFFFD", "\"\uFFFD\""},
	}
	for _, tt := range tests {
		got, err := Marshal(tt.in)
		if err != nil {
			t.Errorf("Marshal(%q): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Marshal(%q) = %s, want %s", tt.in, got, tt.want)
		}
		// The canonical form is a fixed point of Canonicalize.
		again, err := Canonicalize(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("Canonicalize(%s) = %s, %v", got, again, err)
		}
	}
	// Escaped input forms come out in canonical form.
	got, err := Canonicalize([]byte(`"\u003c\u0026\u003e\/\u00e9\ud83d\ude00\u001F\u007f"`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\"<&>/é😀\\u001f\x7f\""; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestKeySorting(t *testing.T) {
	// U+FB33 sorts after U+1F600 in UTF-16 (0xFB33 > 0xD83D) but before it
	// in UTF-8/code point order.
	m := map[string]any{"\uFB33": 1, "\U0001F600": 2, "\uE000": 3, "\uD7FF": 4, "a": 5, "": 6, "aa": 7, "\U00010000": 8}
	got, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"\":6,\"a\":5,\"aa\":7,\"\uD7FF\":4,\"\U00010000\":8,\"\U0001F600\":2,\"\uE000\":3,\"\uFB33\":1}"
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	ss := map[string]string{"\uFB33": "x", "\U0001F600": "y"}
	got, err = Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"\U0001F600\":\"y\",\"\uFB33\":\"x\"}"; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		sign int
	}{
		{"", "", 0},
		{"a", "b", -1},
		{"a", "ab", -1},
		{"\U0001F600", "\uFB33", -1},
		{"\U0001F600", "\U0001F601", -1},
		{"\U00010400", "\U0001F600", -1},
		{"\uFFFF", "\U00010000", 1},
		{"x\u00e9", "x\u00e8", 1},
		{"\u00e9", "z", 1},
	}
	for _, tt := range tests {
		got := compareUTF16(tt.a, tt.b)
		if sign(got) != tt.sign {
			t.Errorf("compareUTF16(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.sign)
		}
		if sign(compareUTF16(tt.b, tt.a)) != -tt.sign {
			t.Errorf("compareUTF16 not antisymmetric for %q, %q", tt.a, tt.b)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestCanonicalizeWhitespaceAndNesting(t *testing.T) {
	in := " { \"z\" : [ 1 , { \"b\" : null , \"a\" : [ ] } , { } ] ,\n\t\"a\" : true } \r\n"
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":true,"z":[1,{"a":[],"b":null},{}]}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"empty", ``, ErrInvalidJSON},
		{"trailing", `{} {}`, ErrInvalidJSON},
		{"trailing comma", `[1,]`, ErrInvalidJSON},
		{"object trailing comma", `{"a":1,}`, ErrInvalidJSON},
		{"single quotes", `{'a':1}`, ErrInvalidJSON},
		{"unquoted key", `{a:1}`, ErrInvalidJSON},
		{"leading zero", `01`, ErrInvalidJSON},
		{"plus", `+1`, ErrInvalidJSON},
		{"bare dot", `1.`, ErrInvalidJSON},
		{"hex", `0x10`, ErrInvalidJSON},
		{"NaN", `NaN`, ErrInvalidJSON},
		{"overflow", `1e400`, ErrInvalidNumber},
		{"negative overflow", `[-1e309]`, ErrInvalidNumber},
		{"duplicate", `{"a":1,"a":2}`, ErrDuplicateKey},
		{"duplicate via escape", `{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{"nested duplicate", `[{"x":{"k":1,"k":1}}]`, ErrDuplicateKey},
		{"invalid utf8", "\"\xff\"", ErrInvalidString},
		{"invalid utf8 key", "{\"\xc3\":1}", ErrInvalidString},
		{"encoded surrogate", "\"\xed\xa0\x80\"", ErrInvalidString},
		{"lone high surrogate", `"\ud83d"`, ErrInvalidString},
		{"lone high surrogate then char", `"\ud83dx"`, ErrInvalidString},
		{"high then high", `"\ud83d\ud83d"`, ErrInvalidString},
		{"lone low surrogate", `"\ude00"`, ErrInvalidString},
		{"raw control", "\"a\x01\"", ErrInvalidJSON},
		{"bad escape", `"\x"`, ErrInvalidJSON},
		{"short unicode escape", `"\u12"`, ErrInvalidJSON},
		{"unterminated string", `"abc`, ErrInvalidJSON},
		{"unterminated array", `[1`, ErrInvalidJSON},
		{"unterminated object", `{"a":1`, ErrInvalidJSON},
		{"bad literal", `tru`, ErrInvalidJSON},
		{"too deep", string(bytes.Repeat([]byte("["), maxDepth+2)) + string(bytes.Repeat([]byte("]"), maxDepth+2)), ErrInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Canonicalize(%q) = %q, %v; want %v", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestMarshalRejects(t *testing.T) {
	tests := []struct {
		name string
		v    any
		err  error
	}{
		{"NaN", math.NaN(), ErrInvalidNumber},
		{"Inf in map", map[string]any{"a": math.Inf(1)}, ErrInvalidNumber},
		{"invalid utf8 string", "\xff", ErrInvalidString},
		{"invalid utf8 key", map[string]any{"\xff": 1}, ErrInvalidString},
		{"invalid utf8 in []string", []string{"ok", "\xc3"}, ErrInvalidString},
		{"bad json.Number", json.Number("1.2.3"), ErrInvalidJSON},
		{"json.Number overflow", json.Number("1e999"), ErrInvalidNumber},
		{"bad RawMessage", json.RawMessage(`{"a":`), ErrInvalidJSON},
		{"channel", make(chan int), ErrUnsupportedValue},
		{"func in map", map[string]any{"f": func() {}}, ErrUnsupportedValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.v)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Marshal = %q, %v; want %v", got, err, tt.err)
			}
		})
	}
}

func TestMarshalKinds(t *testing.T) {
	type inner struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, `null`},
		{"true", true, `true`},
		{"false", false, `false`},
		{"int", -42, `-42`},
		{"int64 2^60 as a double", int64(1) << 60, `1152921504606847000`},
		{"uint64 max", uint64(math.MaxUint64), `18446744073709552000`},
		{"uint8", uint8(7), `7`},
		{"float32", float32(0.1), `0.1`},
		{"float64", 0.1, `0.1`},
		{"nil map", map[string]any(nil), `null`},
		{"nil slice", []any(nil), `null`},
		{"empty map", map[string]any{}, `{}`},
		{"empty slice", []any{}, `[]`},
		{"[]string", []string{"a", "<"}, `["a","<"]`},
		{"nil RawMessage", json.RawMessage(nil), `null`},
		{"RawMessage", json.RawMessage(` {"b" : 1.0, "a":"\u003c"} `), `{"a":"<","b":1}`},
		{"bytes", []byte{1, 2, 3}, `"AQID"`},
		{"struct", inner{B: "<&>", A: 1}, `{"a":1,"b":"<&>"}`},
		{"nested struct in map", map[string]any{"x": []any{inner{B: "y"}, 2.5}}, `{"x":[{"a":0,"b":"y"},2.5]}`},
		{"pointer", &inner{B: "p"}, `{"a":0,"b":"p"}`},
		{"typed map", map[string]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	got, err := Append([]byte("prefix:"), map[string]any{"b": 1, "a": json.RawMessage(`{"d":1,"c":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `prefix:{"a":{"c":2,"d":1},"b":1}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func FuzzCanonicalize(f *testing.F) {
	seeds := []string{
		`{"b":1,"a":"test","c":{"d":"e"}}`,
		`[1e30, 4.50, 2e-3, -0, 333333333.33333329]`,
		`"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`,
		`{"\ud83d\ude00":1,"\ufb33":2}`,
		`{"a":{"a":{"a":[null,true,false]}}}`,
		`{"a":1,"a":2}`,
		`"\ud800"`,
		"\"\xff\"",
		`1e400`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, name := range []string{"rfc8785-values.in.json", "rfc8785-sorting.in.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Canonicalize(data)
		if err != nil {
			// Anything encoding/json accepts must only fail for the
			// documented reasons.
			if json.Valid(data) && !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, ErrInvalidNumber) &&
				!errors.Is(err, ErrInvalidString) && !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("unexpected error kind for valid JSON %q: %v", data, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q (input %q)", out, data)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical output rejected: %q: %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		// Marshal of the generic decoding agrees with Canonicalize.
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("decode canonical output: %v", err)
		}
		viaMarshal, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal of decoded output: %v", err)
		}
		if !bytes.Equal(viaMarshal, out) {
			t.Fatalf("Marshal disagrees:\n%q\n%q", viaMarshal, out)
		}
	})
}

func BenchmarkRuntimeData(b *testing.B) {
	key := workedKey(b)
	rd := map[string]any{
		"additional-evidence": "",
		"nonce":               workedNonce,
		"tee-pubkey":          key.Map(),
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := Marshal(rd)
		if err != nil {
			b.Fatal(err)
		}
		_ = sha512.Sum384(out)
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	key := workedKey(b)
	raw := mustJSON(b, map[string]any{"additional-evidence": "", "nonce": workedNonce, "tee-pubkey": key})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(raw); err != nil {
			b.Fatal(err)
		}
	}
}
