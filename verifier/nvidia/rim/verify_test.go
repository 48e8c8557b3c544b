package rim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// realRIMs lists every real RIM whose signature and chain must verify, with
// a clock inside its signer window (testdata/README.md).
var realRIMs = []struct {
	file    string
	at      time.Time
	version string
	active  int
}{
	{"1010_0200_882_96005E0001_PROD.swidtag", day(2024, 6, 1), "96.00.5E.00.01", 12},
	{"1010_0200_882_96005E0001_test_no_gpu.swidtag", day(2024, 6, 1), "96.00.5E.00.01", 12},
	{"1010_0200_882_960074001A_PROD.swidtag", day(2024, 6, 1), "96.00.74.00.1A", 12},
	{"1010_0210_886_9600740011_PROD.swidtag", day(2024, 6, 1), "96.00.74.00.11", 12},
	{"g520_0200_885_9600740001_PROD.swidtag", day(2024, 6, 1), "96.00.74.00.01", 12},
	{"g520_0202_885_96006D0027_PROD.swidtag", day(2024, 6, 1), "96.00.6D.00.27", 12},
	{"g520_0228_889_96006D0029_PROD.swidtag", day(2024, 6, 1), "96.00.6D.00.29", 12},
	{"Driver_RIM_test_no_gpu.swidtag", day(2024, 6, 1), "545.00", 21},
	{"NV_GPU_DRIVER_GH100_550.144.03.xml", day(2025, 6, 1), "550.144.03", 21},
	{"NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml", day(2024, 6, 1), "96.00.5E.00.01", 12},
	{"switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml", day(2026, 6, 1), "96.10.55.00.01", 31},
}

func defaultVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDefaultRootPinned(t *testing.T) {
	roots, err := DefaultRoots()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(roots[0].Raw)
	if hex.EncodeToString(sum[:]) != DefaultRootSHA256 || roots[0].Subject.CommonName != "NVIDIA CoRIM signing Root CA" {
		t.Fatalf("unexpected root %s", roots[0].Subject)
	}
}

func TestVerifyRealRIMs(t *testing.T) {
	v := defaultVerifier(t)
	for _, tc := range realRIMs {
		t.Run(tc.file, func(t *testing.T) {
			m, chain, err := v.Verify(readVector(t, tc.file), tc.at)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if m.Meta.ColloquialVersion != tc.version {
				t.Errorf("colloquialVersion %q, want %q", m.Meta.ColloquialVersion, tc.version)
			}
			if got := len(m.Active()); got != tc.active {
				t.Errorf("%d active measurements, want %d", got, tc.active)
			}
			if m.Meta.FirmwareManufacturerID != "5703" {
				t.Errorf("FirmwareManufacturerId %q", m.Meta.FirmwareManufacturerID)
			}
			if len(chain) != 4 || chain[3].Subject.CommonName != "NVIDIA CoRIM signing Root CA" {
				t.Errorf("chain %d long", len(chain))
			}
			for _, r := range m.Measurements {
				if r.Size != 48 || len(r.Alternatives) == 0 {
					t.Errorf("resource %d: size %d, %d alternatives", r.Index, r.Size, len(r.Alternatives))
				}
			}
		})
	}
}

func TestVerifyRealNegatives(t *testing.T) {
	v := defaultVerifier(t)
	badRoot, err := ParseCertificatesPEM(readVector(t, "incorrect_rim_root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	wrongRoot, err := NewVerifier(VerifierOptions{Roots: badRoot})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    *Verifier
		file string
		at   time.Time
		want error
	}{
		{"corrupted SignatureValue", v, "incorrect_signature_driver_rim.xml", day(2025, 6, 1), ErrInvalidSignature},
		{"debug hierarchy", v, "incorrect_cert_chain_driver_rim.xml", day(2026, 1, 1), ErrCertChain},
		{"debug hierarchy, leaf expired too", v, "incorrect_cert_chain_driver_rim.xml", day(2028, 1, 1), ErrCertChain},
		{"incorrect root, signer expired too", wrongRoot, "NV_GPU_DRIVER_GH100_550.144.03.xml", day(2027, 6, 1), ErrCertChain},
		{"incorrect root", wrongRoot, "NV_GPU_DRIVER_GH100_550.144.03.xml", day(2025, 6, 1), ErrCertChain},
		{"expired signer", v, "1010_0200_882_960074001A_PROD.swidtag", day(2026, 1, 1), ErrCertExpired},
		{"expired PROD VBIOS", v, "1010_0200_882_96005E0001_PROD.swidtag", day(2025, 7, 1), ErrCertExpired},
		{"switch signer not yet valid", v, "switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml", day(2025, 6, 1), ErrCertExpired},
		{"expired RIM digest", v, "NV_GPU_DRIVER_GH100_570.124.03_expired.xml", day(2025, 1, 1).Add(12 * time.Hour), ErrDigestMismatch},
		{"switch invalid signature", v, "NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml", day(2025, 6, 1), ErrDigestMismatch},
		{"switch relabelled", v, "NV_SWITCH_BIOS_5612_0002_890_9610550001_measurement_mismatch.xml", day(2024, 6, 1), ErrDigestMismatch},
		{"driver modified", v, "NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml", day(2026, 1, 1), ErrDigestMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.v.Verify(readVector(t, tc.file), tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestExpiredRIMChain(t *testing.T) {
	// The _expired vector's digest fails; its chain on its own is expired
	// at any realistic clock and valid only on 2025-01-01.
	m, err := ParseUnverified(readVector(t, "NV_GPU_DRIVER_GH100_570.124.03_expired.xml"))
	if err != nil {
		t.Fatal(err)
	}
	v := defaultVerifier(t)
	if _, err := v.VerifyChain(m.Certificates, day(2026, 1, 1)); !errors.Is(err, ErrCertExpired) {
		t.Fatalf("2026: %v", err)
	}
	if _, err := v.VerifyChain(m.Certificates, day(2025, 1, 1).Add(12*time.Hour)); err != nil {
		t.Fatalf("inside window: %v", err)
	}
}

// mutate returns doc with the first occurrence of old replaced.
func mutate(t *testing.T, doc []byte, old, repl string) []byte {
	t.Helper()
	if !bytes.Contains(doc, []byte(old)) {
		t.Fatalf("%q not in document", old)
	}
	return bytes.Replace(doc, []byte(old), []byte(repl), 1)
}

func sigValue(t *testing.T, doc []byte) string {
	s := string(doc)
	i := strings.Index(s, "<ds:SignatureValue>")
	j := strings.Index(s, "</ds:SignatureValue>")
	if i < 0 || j < i {
		t.Fatal("no SignatureValue")
	}
	return s[i+len("<ds:SignatureValue>") : j]
}

func TestTamperedRealRIM(t *testing.T) {
	v := defaultVerifier(t)
	at := day(2024, 6, 1)
	doc := readVector(t, "1010_0200_882_96005E0001_PROD.swidtag")
	other := readVector(t, "1010_0200_882_960074001A_PROD.swidtag")

	sv := sigValue(t, doc)
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv), ""))
	if err != nil {
		t.Fatal(err)
	}
	raw[10] ^= 0x01
	flippedSig := base64.StdEncoding.EncodeToString(raw)

	// Swap the leaf certificate for another RIM's leaf (same issuer).
	leafOf := func(d []byte) string {
		s := string(d)
		i := strings.Index(s, "<ds:X509Certificate>") + len("<ds:X509Certificate>")
		return s[i : i+strings.Index(s[i:], "</ds:X509Certificate>")]
	}

	tests := []struct {
		name string
		doc  []byte
		want error
	}{
		{"measurement bit flip", mutate(t, doc, "c3f65ef79a19c029", "c3f65ef79a19c028"), ErrDigestMismatch},
		{"version changed", mutate(t, doc, `colloquialVersion="96.00.5E.00.01"`, `colloquialVersion="96.00.5E.00.02"`), ErrDigestMismatch},
		{"inactive made active", mutate(t, doc, `index="7" active="False"`, `index="7" active="True"`), ErrDigestMismatch},
		{"signature bit flip", mutate(t, doc, sv, flippedSig), ErrInvalidSignature},
		{"leaf swapped", mutate(t, doc, leafOf(doc), leafOf(other)), ErrInvalidSignature},
		{"certificate byte flip", mutate(t, doc, leafOf(doc)[40:48], "AAAAAAAA"), ErrMalformed},
		{"digest method", mutate(t, doc, `DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384"`, `DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"`), ErrUnsupportedAlgorithm},
		{"signature method", mutate(t, doc, "xmldsig-more#ecdsa-sha384", "xmldsig-more#rsa-sha384"), ErrUnsupportedAlgorithm},
		{"c14n 1.0", mutate(t, doc, `CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"`, `CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"`), ErrUnsupportedAlgorithm},
		{"reference URI", mutate(t, doc, `Reference URI=""`, `Reference URI="#x"`), ErrUnsupportedAlgorithm},
		{"no reference URI", mutate(t, doc, `Reference URI=""`, `Reference`), ErrUnsupportedAlgorithm},
		{"DTD", append([]byte("<!DOCTYPE SoftwareIdentity [<!ENTITY x \"y\">]>\n"), doc...), ErrMalformed},
		{"comment", mutate(t, doc, "<ns0:Payload", "<!-- hi --><ns0:Payload"), ErrMalformed},
		{"processing instruction", mutate(t, doc, "<ns0:Payload", "<?pi x?><ns0:Payload"), ErrMalformed},
		{"second signature", mutate(t, doc, "</ns0:Payload>", "</ns0:Payload><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>"), ErrMalformed},
		{"truncated", doc[:len(doc)/2], ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.Verify(tc.doc, at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Sanity: the untouched document verifies.
	if _, _, err := v.Verify(doc, at); err != nil {
		t.Fatal(err)
	}
}

func TestXMLDeclarationAccepted(t *testing.T) {
	doc := readVector(t, "1010_0200_882_96005E0001_PROD.swidtag")
	withDecl := append([]byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"), doc...)
	if _, _, err := defaultVerifier(t).Verify(withDecl, day(2024, 6, 1)); err != nil {
		t.Fatalf("XML declaration: %v", err)
	}
	latin := append([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"), doc...)
	if _, _, err := defaultVerifier(t).Verify(latin, day(2024, 6, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("latin-1: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	v := defaultVerifier(b)
	doc := readVector(b, "1010_0200_882_96005E0001_PROD.swidtag")
	at := day(2024, 6, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(doc, at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	doc := readVector(b, "1010_0200_882_96005E0001_PROD.swidtag")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifySignature(doc); err != nil {
			b.Fatal(err)
		}
	}
}
