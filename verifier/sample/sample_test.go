package sample

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
)

// Worked vector from guest-client.md §1.4 (no additional devices).
const (
	vectorJCS      = `{"additional-evidence":"","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"UVw9brnjlrkE0_7Kf1T9zQzB6Ze_N13KUVrQpsO0A18","y":"RTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q"}}`
	vectorDigest   = "bbfe86a638421c8bde0173f4716b22a53ad22f47b8b30fc6c22046c003a08a176eebf5ac85388b4979b097ca0de723bd"
	vectorEvidence = `{"svn":"1","report_data":"u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9"}`
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkedVector(t *testing.T) {
	digest := mustHex(t, vectorDigest)
	if sum := sha512.Sum384([]byte(vectorJCS)); hex.EncodeToString(sum[:]) != vectorDigest {
		t.Fatalf("vector inconsistent: SHA-384(JCS) = %x", sum)
	}
	res, err := New().Verify(context.Background(), []byte(vectorEvidence), verifier.Expected{ReportData: digest})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) != 1 || res[0].Class != "cpu" {
		t.Fatalf("results = %+v", res)
	}
	want := map[string]any{
		"svn":              "1",
		"report_data":      "u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9",
		"launch_digest":    "abcde",
		"platform_version": map[string]any{"major": json.Number("1"), "minor": json.Number("4")},
		"debug":            false,
	}
	if !reflect.DeepEqual(res[0].Claims, want) {
		t.Errorf("claims = %#v\nwant %#v", res[0].Claims, want)
	}
	b, err := json.Marshal(res[0].Claims)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"debug":false,"launch_digest":"abcde","platform_version":{"major":1,"minor":4},"report_data":"u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9","svn":"1"}`
	if string(b) != wantJSON {
		t.Errorf("claims JSON = %s\nwant %s", b, wantJSON)
	}
}

func TestReportDataCheck(t *testing.T) {
	digest := mustHex(t, vectorDigest)
	flipped := append([]byte(nil), digest...)
	flipped[47] ^= 1
	padded := append(append([]byte(nil), digest...), make([]byte, 16)...)
	tests := []struct {
		name     string
		evidence string
		expected []byte
		wantErr  bool
	}{
		{"match", vectorEvidence, digest, false},
		{"not checked when nil", vectorEvidence, nil, false},
		{"one bit differs", vectorEvidence, flipped, true},
		{"expected zero-padded to 64", vectorEvidence, padded, true},
		{"expected truncated", vectorEvidence, digest[:32], true},
		{"empty expected vs data", vectorEvidence, []byte{}, true},
		{"missing report_data vs expected", `{"svn":"1"}`, digest, true},
		{"missing report_data vs empty expected", `{"svn":"1"}`, []byte{}, false},
		{"missing report_data, nil expected", `{"svn":"1"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().Verify(context.Background(), []byte(tt.evidence), verifier.Expected{ReportData: tt.expected})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrReportDataMismatch) || !strings.Contains(err.Error(), "report data mismatch")) {
				t.Errorf("error %q is not a report data mismatch", err)
			}
		})
	}
}

func TestInitDataClaim(t *testing.T) {
	digest := mustHex(t, vectorDigest)
	initDigest := mustHex(t, "c8238306a804fcdfd273275544db88f9f43417b08591dac9e7647af645c4aea4")
	res, err := New().Verify(context.Background(), []byte(vectorEvidence), verifier.Expected{ReportData: digest, InitDataDigest: initDigest})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Claims["init_data"]; got != "yCODBqgE/N/ScydVRNuI+fQ0F7CFkdrJ52R69kXErqQ=" {
		t.Errorf("init_data = %v", got)
	}
	res, err = New().Verify(context.Background(), []byte(vectorEvidence), verifier.Expected{ReportData: digest})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res[0].Claims["init_data"]; ok {
		t.Error("init_data claim present without an init-data digest")
	}
}

func TestMalformedEvidence(t *testing.T) {
	tests := map[string]string{
		"empty":                   ``,
		"not JSON":                `{"svn":`,
		"null":                    `null`,
		"array":                   `[{"svn":"1"}]`,
		"string":                  `"{\"svn\":\"1\"}"`,
		"number":                  `1`,
		"missing svn":             `{"report_data":""}`,
		"svn number":              `{"svn":1,"report_data":""}`,
		"svn null":                `{"svn":null}`,
		"report_data null":        `{"svn":"1","report_data":null}`,
		"report_data array":       `{"svn":"1","report_data":[1,2]}`,
		"report_data not base64":  `{"svn":"1","report_data":"!!"}`,
		"report_data unpadded":    `{"svn":"1","report_data":"AQ"}`,
		"report_data URL-safe":    `{"svn":"1","report_data":"-_8="}`,
		"report_data bad padding": `{"svn":"1","report_data":"AQ==="}`,
		"trailing garbage":        `{"svn":"1"} x`,
	}
	for name, ev := range tests {
		t.Run(name, func(t *testing.T) {
			if res, err := New().Verify(context.Background(), []byte(ev), verifier.Expected{}); err == nil {
				t.Errorf("Verify = %+v, want an error", res)
			}
		})
	}
}

func TestExtraMembersIgnored(t *testing.T) {
	res, err := New().Verify(context.Background(), []byte(`{"svn":"7","report_data":"AQI=","extra":{"x":1}}`), verifier.Expected{ReportData: []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Claims["svn"] != "7" || res[0].Claims["report_data"] != "AQI=" {
		t.Errorf("claims = %v", res[0].Claims)
	}
	if _, ok := res[0].Claims["extra"]; ok {
		t.Error("unknown evidence member copied into claims")
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New().Verify(ctx, []byte(vectorEvidence), verifier.Expected{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify error = %v, want context.Canceled", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(vectorEvidence))
	f.Add([]byte(`{"svn":"1"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, ev []byte) {
		_, _ = New().Verify(context.Background(), ev, verifier.Expected{ReportData: []byte{1}})
	})
}
