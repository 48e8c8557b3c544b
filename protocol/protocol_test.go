package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

const validAttestation = `{
 "init-data": null,
 "runtime-data": {"nonce": "bm9uY2U=", "tee-pubkey": {"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"BB","extra":"dropped"}},
 "tee-evidence": {"primary_evidence": {"svn":"1","report_data":""}, "additional_evidence": ""}
}`

func TestAttestationParse(t *testing.T) {
	var a Attestation
	if err := json.Unmarshal([]byte(validAttestation), &a); err != nil {
		t.Fatal(err)
	}
	if a.RuntimeData.Nonce != "bm9uY2U=" || a.RuntimeData.TeePubKey.X != "AA" || a.InitData != nil {
		t.Fatalf("parsed %+v", a)
	}
	m := a.RuntimeData.TeePubKey.Map()
	if _, ok := m["extra"]; ok || len(m) != 5 {
		t.Fatalf("unknown JWK members must be dropped: %v", m)
	}
	if string(a.TeeEvidence.PrimaryEvidence) != `{"svn":"1","report_data":""}` {
		t.Fatalf("primary evidence %s", a.TeeEvidence.PrimaryEvidence)
	}
}

func TestAttestationRejects(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"not json", `{`, "unexpected end"},
		{"array", `[]`, "cannot unmarshal"},
		{"no runtime-data", `{"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "runtime-data"},
		{"no tee-evidence", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}}}`, "tee-evidence"},
		{"no nonce", `{"runtime-data":{"tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "nonce"},
		{"nonce not string", `{"runtime-data":{"nonce":5,"tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "cannot unmarshal"},
		{"no key", `{"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "tee-pubkey"},
		{"bad kty", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"oct","alg":"a"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "unknown variant"},
		{"rsa missing n", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"a","e":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "`n`"},
		{"ec missing crv", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","alg":"a","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "`crv`"},
		{"empty alg", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","alg":"","crv":"P-256","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "alg"},
		{"no primary", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"additional_evidence":""}}`, "primary_evidence"},
		{"additional not string", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":{}}}`, "cannot unmarshal"},
		{"no additional", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"primary_evidence":{}}}`, "additional_evidence"},
		{"init-data no format", `{"init-data":{"body":"x"},"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"a","n":"x","e":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a Attestation
			err := json.Unmarshal([]byte(c.body), &a)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
}

func TestRequestParse(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"version":"0.4.0","tee":"sample","extra-params":""}`, true},
		{`{"version":"0.4.0","tee":"tdx","extra-params":{"supported-hash-algorithms":["sha384"]}}`, true},
		{`{"version":"0.4.0","tee":"tdx","extra-params":null}`, true}, // null is a valid serde_json::Value
		{`{"version":"0.4.0","tee":"sample"}`, false},
		{`{"tee":"sample","extra-params":""}`, false},
		{`{"version":"0.4.0","extra-params":""}`, false},
		{`{"version":"0.4.0","tee":"SAMPLE","extra-params":""}`, false},
		{`{"version":"0.4.0","tee":"nope","extra-params":""}`, false},
		{`{"version":1,"tee":"sample","extra-params":""}`, false},
	}
	for _, c := range cases {
		var r Request
		err := json.Unmarshal([]byte(c.body), &r)
		if (err == nil) != c.ok {
			t.Errorf("%s: err=%v, want ok=%v", c.body, err, c.ok)
		}
	}
}

func TestTeePubKeyMarshalOrder(t *testing.T) {
	k := TeePubKey{Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW", X: "x", Y: "y"}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"x","y":"y"}` {
		t.Fatalf("got %s", b)
	}
	var back TeePubKey
	if err := json.Unmarshal(b, &back); err != nil || back != k {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func FuzzAttestation(f *testing.F) {
	f.Add([]byte(validAttestation))
	f.Add([]byte(`{"init-data":{"format":"toml","body":"version = \"0.1.0\""},"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":"{\"sampledevice\":{}}"}}`))
	f.Add([]byte(`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"AKP","alg":"ML-KEM-768+A192KW","pub":"x"}},"tee-evidence":{"primary_evidence":null,"additional_evidence":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Attestation
		if err := json.Unmarshal(data, &a); err != nil {
			return
		}
		// A parsed attestation always has a usable key map and re-encodes.
		if a.RuntimeData.TeePubKey.Map()["kty"] == "" {
			t.Fatal("parsed key without kty")
		}
		if _, err := json.Marshal(a.RuntimeData.TeePubKey); err != nil {
			t.Fatalf("re-encoding the key: %v", err)
		}
	})
}

func TestDecodePolicy(t *testing.T) {
	text := "package policy\ndefault allow := false\n" // 39 bytes: encodes with a partial last quantum
	good := "cGFja2FnZSBwb2xpY3kKZGVmYXVsdCBhbGxvdyA6PSBmYWxzZQo"
	if b, err := DecodePolicy(good); err != nil || string(b) != text {
		t.Fatalf("DecodePolicy(good) = %q, %v", b, err)
	}
	for name, in := range map[string]string{
		"padded":          good + "=",
		"standard alpha":  "a+b/",
		"invalid char":    "cGFja2FnZ!",
		"line break":      good[:20] + "\n" + good[20:],
		"carriage return": good[:20] + "\r" + good[20:],
		"space":           good[:20] + " " + good[20:],
		"trailing bits":   "cGFja2FnZSBwb2xpY3kKZGVmYXVsdCBhbGxvdyA6PSBmYWxzZQp", // last char has non-zero unused bits
		"impossible len":  "a",
	} {
		if b, err := DecodePolicy(in); err == nil {
			t.Errorf("%s: DecodePolicy(%q) = %q, want an error", name, in, b)
		}
	}
}

func TestStrictJSON(t *testing.T) {
	att := func(inner string) string {
		return `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"x","y":"y"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}` + inner + `}`
	}
	cases := []struct {
		name, body string
		into       any
	}{
		{"request wrong case", `{"Version":"0.4.0","TEE":"sample","extra-params":""}`, &Request{}},
		{"request duplicate tee", `{"version":"0.4.0","tee":"tdx","tee":"sample","extra-params":""}`, &Request{}},
		{"request invalid utf8", "{\"version\":\"0.4.0\",\"tee\":\"sample\",\"extra-params\":\"\xff\"}", &Request{}},
		{"request lone surrogate", `{"version":"0.4.0","tee":"sample","extra-params":"\ud800"}`, &Request{}},
		{"attestation duplicate nonce", `{"runtime-data":{"nonce":"a","nonce":"b","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, &Attestation{}},
		{"attestation wrong case", `{"Runtime-Data":{"nonce":"n"},"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, &Attestation{}},
		{"attestation nested wrong case", `{"runtime-data":{"Nonce":"n","nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`, &Attestation{}},
		{"duplicate in evidence", att(`,"x":{"svn":"1","svn":"2"}`), &Attestation{}},
		{"duplicate in primary evidence", `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"x","e":"AQAB"}},"tee-evidence":{"primary_evidence":{"svn":"1","svn":"2"},"additional_evidence":""}}`, &Attestation{}},
		{"duplicate top-level member", att(`,"init-data":null,"init-data":{"format":"toml","body":""}`), &Attestation{}},
		{"init-data wrong case", att(`,"init-data":{"Format":"toml","body":""}`), &Attestation{}},
		{"jwk duplicate kty", `{"kty":"EC","kty":"RSA","crv":"P-256","alg":"a","x":"x","y":"y"}`, &TeePubKey{}},
		{"jwk wrong case only", `{"kty":"EC","Crv":"P-256","alg":"a","x":"x","y":"y"}`, &TeePubKey{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(c.body), c.into); err == nil {
				t.Fatalf("accepted %s", c.body)
			}
		})
	}
}

func TestIsDeviceTee(t *testing.T) {
	for tee, want := range map[string]bool{
		TeeNvidia: true, TeeSampleDevice: true, TeeHygonDcu: true, "nvidia-dpu": true,
		TeeSample: false, TeeTdx: false, TeeSnp: false, TeeAzSnpVtpm: false, TeeTpm: false, TeeSe: false,
	} {
		if IsDeviceTee(tee) != want {
			t.Errorf("IsDeviceTee(%q) = %v", tee, !want)
		}
	}
}
