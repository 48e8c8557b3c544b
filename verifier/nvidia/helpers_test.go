package nvidia

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedNow is inside the validity of every real device chain in testdata.
var fixedNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readReport decodes a hex-text report.
func readReport(t testing.TB, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(string(readFile(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// device builds a Trustee device entry from raw report bytes and PEM chain
// bytes (report in hex, like Trustee's samples).
func device(arch, uuid string, report, chainPEM []byte) DeviceEvidence {
	return DeviceEvidence{
		Arch:        arch,
		UUID:        uuid,
		Evidence:    hex.EncodeToString(report),
		Certificate: base64.StdEncoding.EncodeToString(chainPEM),
	}
}

func evidenceJSON(t testing.TB, devs ...DeviceEvidence) []byte {
	t.Helper()
	b, err := json.Marshal(Evidence{Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type x509Certificate = x509.Certificate

func mustParseCert(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemChain(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
