package tokenverify

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestTeePubKey(t *testing.T) {
	key := func(tag string) map[string]any {
		return map[string]any{"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "x-" + tag, "y": "y"}
	}
	decode := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	all := map[string]any{
		"tdx": map[string]any{
			"attester_runtime_data": map[string]any{"tee-pubkey": key("tdx-rt")},
			"attester_user_data":    map[string]any{"tee-pubkey": key("tdx-ud")},
		},
		"customized_claims": map[string]any{"runtime_data": map[string]any{"tee-pubkey": key("legacy")}},
		"submods": map[string]any{"cpu0": map[string]any{"ear.veraison.annotated-evidence": map[string]any{
			"runtime_data_claims": map[string]any{"tee-pubkey": key("ear")}}}},
		"tee-pubkey": key("top"),
		"my/claims":  map[string]any{"ti~lde": key("escaped")},
		"list":       []any{map[string]any{"k": key("list0")}},
	}
	cases := []struct {
		name    string
		claims  map[string]any
		extra   []string
		wantX   string
		wantErr error
	}{
		{"tdx runtime data first", all, nil, "x-tdx-rt", nil},
		{"tdx user data", without(all, "/tdx/attester_runtime_data"), nil, "x-tdx-ud", nil},
		{"legacy simple token", without(all, "/tdx"), nil, "x-legacy", nil},
		{"EAR", without(without(all, "/tdx"), "/customized_claims"), nil, "x-ear", nil},
		{"top level", map[string]any{"tee-pubkey": key("top")}, nil, "x-top", nil},
		{"extra path wins", all, []string{"/my~1claims/ti~0lde"}, "x-escaped", nil},
		{"first resolving extra path wins", all, []string{"/missing", "/list/0/k", "/tee-pubkey"}, "x-list0", nil},
		{"unresolved extras fall back", all, []string{"/nope", "/list/1/k", "/list/01/k"}, "x-tdx-rt", nil},
		{"null is a miss", map[string]any{"tdx": map[string]any{"attester_runtime_data": map[string]any{"tee-pubkey": nil}}, "tee-pubkey": key("top")}, nil, "x-top", nil},
		{"RSA key (extra members dropped)", decode(`{"tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"bm9wZQ","e":"AQAB","extra":1}}`), nil, "", nil},
		{"none found", map[string]any{"submods": map[string]any{}}, nil, "", ErrNoTeePubKey},
		{"hit with invalid key", map[string]any{"tee-pubkey": map[string]any{"kty": "oct"}}, nil, "", errAny},
		{"hit with non-object", map[string]any{"tee-pubkey": "abc"}, nil, "", errAny},
		{"malformed extra pointer", all, []string{"bad"}, "", errAny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := TeePubKey(c.claims, c.extra)
			switch {
			case c.wantErr == errAny:
				if err == nil {
					t.Fatalf("expected an error, got %+v", k)
				}
				return
			case c.wantErr != nil:
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("got %v, want %v", err, c.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if c.wantX == "" {
				if k.Kty != "RSA" || k.N != "bm9wZQ" || k.E != "AQAB" || k.Alg != "RSA-OAEP-256" {
					t.Fatalf("got %+v", k)
				}
				return
			}
			if k.Kty != "EC" || k.X != c.wantX || k.Crv != "P-256" || k.Alg != "ECDH-ES+A256KW" {
				t.Fatalf("got %+v, want x %s", k, c.wantX)
			}
		})
	}
}

var errAny = errors.New("any error")

// without returns a deep-enough copy of m with the member at ptr removed.
func without(m map[string]any, ptr string) map[string]any {
	parts, err := splitPointer(ptr)
	if err != nil {
		panic(err)
	}
	var cp func(v map[string]any, parts []string) map[string]any
	cp = func(v map[string]any, parts []string) map[string]any {
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = x
		}
		if len(parts) == 1 {
			delete(out, parts[0])
		} else if sub, ok := out[parts[0]].(map[string]any); ok {
			out[parts[0]] = cp(sub, parts[1:])
		}
		return out
	}
	return cp(m, parts)
}

func TestLookupPointer(t *testing.T) {
	doc := map[string]any{"a/b": map[string]any{"m~n": []any{"zero", "one"}}, "": "empty"}
	cases := []struct {
		ptr    string
		want   any
		ok     bool
		badPtr bool
	}{
		{"/a~1b/m~0n/1", "one", true, false},
		{"/a~1b/m~0n/0", "zero", true, false},
		{"/", "empty", true, false},
		{"/a~1b/m~0n/2", nil, false, false},
		{"/a~1b/m~0n/-", nil, false, false},
		{"/a~1b/m~0n/01", nil, false, false},
		{"/a~1b/m~0n/+1", nil, false, false},
		{"/a~1b/m~0n/0/x", nil, false, false},
		{"/a/b", nil, false, false},
		{"a", nil, false, true},
		{"/a~", nil, false, true},
		{"/a~x", nil, false, true},
	}
	for _, c := range cases {
		got, ok, err := Lookup(doc, c.ptr)
		if (err != nil) != c.badPtr || ok != c.ok || (ok && got != c.want) {
			t.Errorf("%q: got %v %v %v", c.ptr, got, ok, err)
		}
	}
	if got, ok, err := Lookup(doc, ""); err != nil || !ok || got == nil {
		t.Errorf("empty pointer: %v %v %v", got, ok, err)
	}
}

func TestValidateTeeKeyPath(t *testing.T) {
	tests := []struct {
		ptr string
		ok  bool
	}{
		{"/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey", true},
		{"/submods/cpu12/x", true},
		{"/tee-pubkey", true},
		{"/customized_claims/runtime_data/tee-pubkey", true},
		{"/submods/gpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey", false},
		{"/submods/switch0/x", false},
		{"/submods/cpu", false},
		{"/submods/cpu0", false},
		{"/submods/cpu0x/y", false},
		{"/submods/~0cpu0/y", false},
		{"/submods/cpu0~1/y", false},
		{"/submods", false},
		{"", false},
		{"submods/cpu0/x", false},
		{"/a/~2", false},
	}
	for _, tt := range tests {
		if err := ValidateTeeKeyPath(tt.ptr); (err == nil) != tt.ok {
			t.Errorf("ValidateTeeKeyPath(%q) = %v, want ok=%v", tt.ptr, err, tt.ok)
		}
	}
}
