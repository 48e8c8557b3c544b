package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
)

// testCA is a certificate with its key, for building PCK chains whose
// every certificate the test controls.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issueCert signs a certificate for key by parent (nil: self-signed). A
// non-nil rawSubject replaces the subject (to impersonate a real name).
func issueCert(t testing.TB, serial int64, cn string, rawSubject []byte, ca bool, key *ecdsa.PrivateKey, parent *testCA, exts []pkix.Extension) *testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sigil test"}},
		RawSubject:            rawSubject,
		NotBefore:             testEpoch,
		NotAfter:              testEpoch.AddDate(10, 0, 0),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		ExtraExtensions:       exts,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

func chainPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// withPCKChain returns a copy of the v4 quote raw whose PEM PCK chain is
// replaced by chain, with every enclosing length fixed up. The chain is not
// covered by any signature, so the quote stays otherwise valid.
func withPCKChain(t testing.TB, raw, chain []byte) []byte {
	t.Helper()
	q, err := ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	start := q.Size - len(q.PCKChainPEM)
	out := append(bytes.Clone(raw[:start]), chain...)
	delta := uint32(len(chain) - len(q.PCKChainPEM))
	add := func(off int, d uint32) {
		binary.LittleEndian.PutUint32(out[off:], binary.LittleEndian.Uint32(out[off:])+d)
	}
	sigLenOff := len(q.SignedData)
	add(sigLenOff, delta)                                            // signature data length
	add(sigLenOff+4+64+64+2, delta)                                  // QE report certification data size
	binary.LittleEndian.PutUint32(out[start-4:], uint32(len(chain))) // PCK chain size
	if _, err := ParseQuote(out); err != nil {
		t.Fatalf("rebuilt quote: %v", err)
	}
	return out
}

// pemCerts parses the PEM certificates of a quote's chain.
func pemCerts(t testing.TB, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestPCKChainRootPinned: the root a quote carries is never trusted; only
// the pinned roots anchor a PCK chain.
func TestPCKChainRootPinned(t *testing.T) {
	ctx := context.Background()
	ext := []pkix.Extension{{Id: OIDSGXExtensions, Value: sgxExtDER(t, defaultSGXExt())}}

	// The pinned test hierarchy.
	pinned := issueCert(t, 1, "Test SGX Root CA", nil, true, newKey(t), nil, nil)
	pinnedInter := issueCert(t, 2, "Test SGX PCK Platform CA", nil, true, newKey(t), pinned, nil)
	pinnedLeaf := issueCert(t, 3, "Test SGX PCK Certificate", nil, false, newKey(t), pinnedInter, ext)
	// The same root re-issued: same subject and key, other bytes.
	reissued := issueCert(t, 99, "Test SGX Root CA", nil, true, pinned.key, nil, nil)

	// A forged hierarchy under a fresh self-signed root that impersonates
	// the pinned root's subject.
	forged := issueCert(t, 1, "", pinned.cert.RawSubject, true, newKey(t), nil, nil)
	forgedInter := issueCert(t, 2, "", pinnedInter.cert.RawSubject, true, newKey(t), forged, nil)
	forgedLeaf := issueCert(t, 3, "Test SGX PCK Certificate", nil, false, newKey(t), forgedInter, ext)
	// An unrelated fresh self-signed CA.
	stranger := issueCert(t, 7, "Totally Intel Root CA", nil, true, newKey(t), nil, nil)

	synth := func(leaf *testCA, certs ...*x509.Certificate) []byte {
		return buildQuote(t, &testPKI{leafKey: leaf.key, chainPEM: chainPEM(certs...)}, quoteOpts{version: 4})
	}
	real6 := readTestdata(t, "tdx_quote_6.dat")
	q6, err := ParseQuote(real6)
	if err != nil {
		t.Fatal(err)
	}
	realCerts := pemCerts(t, q6.PCKChainPEM)
	if len(realCerts) != 3 {
		t.Fatalf("real chain has %d certificates", len(realCerts))
	}
	intelRoot := realCerts[2]
	fakeIntelRoot := issueCert(t, 1, "", intelRoot.RawSubject, true, newKey(t), nil, nil)

	testRoots := []*x509.Certificate{pinned.cert}
	tests := []struct {
		name    string
		quote   []byte
		roots   []*x509.Certificate // nil: the embedded Intel root
		wantErr string              // "": must verify
	}{
		{"synthetic genuine", synth(pinnedLeaf, pinnedLeaf.cert, pinnedInter.cert, pinned.cert), testRoots, ""},
		{"synthetic without root", synth(pinnedLeaf, pinnedLeaf.cert, pinnedInter.cert), testRoots, ""},
		{"synthetic re-issued pinned root", synth(pinnedLeaf, pinnedLeaf.cert, pinnedInter.cert, reissued.cert), testRoots, ""},
		{"forged chain under impersonating root", synth(forgedLeaf, forgedLeaf.cert, forgedInter.cert, forged.cert), testRoots, "not a pinned Intel SGX root"},
		{"forged chain under stranger root", synth(forgedLeaf, forgedLeaf.cert, forgedInter.cert, stranger.cert), testRoots, "not a pinned Intel SGX root"},
		{"genuine chain with a foreign root appended", synth(pinnedLeaf, pinnedLeaf.cert, pinnedInter.cert, stranger.cert), testRoots, "not a pinned Intel SGX root"},
		{"genuine chain with a foreign root in the middle", synth(pinnedLeaf, pinnedLeaf.cert, stranger.cert, pinnedInter.cert, pinned.cert), testRoots, "not a pinned Intel SGX root"},
		{"real quote", real6, nil, ""},
		{"real quote without root", withPCKChain(t, real6, chainPEM(realCerts[:2]...)), nil, ""},
		{"real quote with its root replaced", withPCKChain(t, real6, chainPEM(realCerts[0], realCerts[1], fakeIntelRoot.cert)), nil, "not a pinned Intel SGX root"},
		{"real quote against a foreign pinned root", real6, testRoots, "not a pinned Intel SGX root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := testEpoch.AddDate(1, 0, 0)
			if tt.roots == nil {
				now = clock6
			}
			v := newVerifier(t, Options{Now: fixed(now), TrustedRoots: tt.roots})
			res, err := v.Verify(ctx, evidenceJSON(t, tt.quote, nil), verifier.Expected{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("genuine chain rejected: %v", err)
				}
				if len(res) != 1 {
					t.Fatalf("results %+v", res)
				}
				return
			}
			if !errors.Is(err, ErrPCKChain) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %v containing %q", err, ErrPCKChain, tt.wantErr)
			}
		})
	}
}

// TestVerifiedChainEndsAtPinnedRoot: the chain handed to the revocation
// hook and the root_key_id claim ends at the pinned root, not at the copy
// the quote carries.
func TestVerifiedChainEndsAtPinnedRoot(t *testing.T) {
	root, err := DefaultRoot()
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Options{Now: fixed(clock6)})
	vq, err := v.VerifyQuote(context.Background(), readTestdata(t, "tdx_quote_6.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if last := vq.Chain[len(vq.Chain)-1]; last != root && !bytes.Equal(last.Raw, root.Raw) {
		t.Errorf("chain ends at %q, want the pinned Intel root", last.Subject)
	}
}
