package sampledevice

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/sample"
)

// Worked vector from guest-client.md §1.4 with ENABLE_SAMPLE_DEVICE set.
const (
	deviceJCS      = `{"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"UVw9brnjlrkE0_7Kf1T9zQzB6Ze_N13KUVrQpsO0A18","y":"RTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q"}}`
	deviceDigest   = "47a5f5e56d9e064a656c373b77acdb6d5b9b38d823586a7e79688d6ad1beb7a4b8a1865d63b7e44ab5e34ca59308d9e3"
	deviceEvidence = `{"svn":"2","report_data":"R6X15W2eBkplbDc7d6zbbVubONgjWGp+eWiNatG+t6S4oYZdY7fkSrXjTKWTCNnj"}`
)

func digest(t *testing.T) []byte {
	t.Helper()
	b, err := hex.DecodeString(deviceDigest)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha512.Sum384([]byte(deviceJCS)); !reflect.DeepEqual(sum[:], b) {
		t.Fatalf("vector inconsistent: SHA-384(JCS) = %x", sum)
	}
	return b
}

func TestWorkedVector(t *testing.T) {
	d := digest(t)
	res, err := New().Verify(context.Background(), []byte(deviceEvidence), verifier.Expected{ReportData: d, InitDataDigest: []byte{9, 9}})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := []verifier.Result{{
		Class: "gpu",
		Claims: map[string]any{
			"svn":         "2",
			"report_data": "R6X15W2eBkplbDc7d6zbbVubONgjWGp+eWiNatG+t6S4oYZdY7fkSrXjTKWTCNnj",
		},
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("results = %#v\nwant %#v", res, want)
	}
}

func TestMismatch(t *testing.T) {
	d := digest(t)
	d[0] ^= 0x80
	for _, exp := range [][]byte{d, d[:32], append(digest(t), 0)} {
		_, err := New().Verify(context.Background(), []byte(deviceEvidence), verifier.Expected{ReportData: exp})
		if !errors.Is(err, sample.ErrReportDataMismatch) {
			t.Errorf("expected %x: error = %v, want report data mismatch", exp, err)
		}
	}
}

func TestMalformedEvidence(t *testing.T) {
	for name, ev := range map[string]string{
		"empty":              ``,
		"null":               `null`,
		"array":              `[]`,
		"missing svn":        `{"report_data":""}`,
		"svn number":         `{"svn":2}`,
		"report_data number": `{"svn":"2","report_data":1}`,
		"bad base64":         `{"svn":"2","report_data":"R6X"}`,
	} {
		if res, err := New().Verify(context.Background(), []byte(ev), verifier.Expected{}); err == nil {
			t.Errorf("%s: Verify = %+v, want an error", name, res)
		}
	}
}
