package nvidiatest_test

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// The generated hierarchy and reports have NVIDIA's shape: five P-384
// certificates that verify to the test root, an FWID extension the
// verifier extracts, and a report that parses and verifies with the leaf.
func TestGeneratedShape(t *testing.T) {
	nb := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h, err := nvidiatest.NewHierarchy(nb, nb.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{nvidiatest.Hopper, nvidiatest.Blackwell, nvidiatest.LS10} {
		d, err := h.NewDevice(arch, nvidiatest.DeviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certs, err := nvidia.ParseCertChain(d.ChainPEM())
		if err != nil || len(certs) != nvidia.ChainLength {
			t.Fatalf("%s chain: %d certs, %v", arch, len(certs), err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(h.Root)
		inter := x509.NewCertPool()
		for _, c := range certs[1:4] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: nb.AddDate(0, 6, 0), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s chain: %v", arch, err)
		}
		a, _ := nvidia.ParseArch(arch)
		fw, err := nvidia.CertFWID(certs[0], a)
		if err != nil || !bytes.Equal(fw, d.FWID) {
			t.Errorf("%s FWID %x, %v", arch, fw, err)
		}
		nonce := bytes.Repeat([]byte{7}, 32)
		raw, err := d.Report(nvidiatest.ReportOptions{Nonce: nonce, Trailing: []byte{0}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := nvidia.ParseReport(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Request.Nonce[:], nonce) || r.Trailing != 1 {
			t.Errorf("%s nonce %x trailing %d", arch, r.Request.Nonce, r.Trailing)
		}
		want := 64
		if arch == nvidiatest.LS10 {
			want = 31
		}
		if len(r.Response.Blocks) != want {
			t.Errorf("%s: %d blocks", arch, len(r.Response.Blocks))
		}
		if err := r.VerifySignature(&d.LeafKey.PublicKey); err != nil {
			t.Errorf("%s signature: %v", arch, err)
		}
	}
}
