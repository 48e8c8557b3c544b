package rim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// XML-DSig identifiers accepted (exactly the ones NVIDIA uses).
const (
	NamespaceDSig        = "http://www.w3.org/2000/09/xmldsig#"
	AlgC14N11            = "http://www.w3.org/2006/12/xml-c14n11"
	AlgEnvelopedSig      = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	AlgSHA384            = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	AlgECDSASHA384       = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	maxEmbeddedCerts     = 8
	ecdsaP384SignatureSz = 96
)

//go:embed verifier_RIM_root.pem
var defaultRootPEM []byte

// DefaultRootSHA256 is the SHA-256 fingerprint of the embedded "NVIDIA CoRIM
// signing Root CA" (nvtrust certs/verifier_RIM_root.pem).
const DefaultRootSHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"

// DefaultRoots returns the embedded NVIDIA RIM root, checked against its
// pinned SHA-256 fingerprint.
func DefaultRoots() ([]*x509.Certificate, error) {
	certs, err := ParseCertificatesPEM(defaultRootPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("rim: embedded root bundle holds %d certificates", len(certs))
	}
	sum := sha256.Sum256(certs[0].Raw)
	if hex.EncodeToString(sum[:]) != DefaultRootSHA256 {
		return nil, errors.New("rim: embedded root does not match its pinned fingerprint")
	}
	return certs, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of a PEM bundle.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("rim: parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("rim: no certificate in PEM data")
	}
	return out, nil
}

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Roots are the trusted RIM root certificates. Empty means the embedded
	// NVIDIA CoRIM signing root (DefaultRoots).
	Roots []*x509.Certificate
}

// Verifier checks RIM signatures and signer chains against pinned roots. It
// is safe for concurrent use.
type Verifier struct {
	roots  *x509.CertPool
	pinned map[[32]byte]bool
}

// NewVerifier returns a Verifier for the given roots.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	roots := opts.Roots
	if len(roots) == 0 {
		var err error
		if roots, err = DefaultRoots(); err != nil {
			return nil, err
		}
	}
	v := &Verifier{roots: x509.NewCertPool(), pinned: map[[32]byte]bool{}}
	for _, r := range roots {
		if r == nil {
			return nil, errors.New("rim: nil root certificate")
		}
		v.roots.AddCert(r)
		v.pinned[sha256.Sum256(r.Raw)] = true
	}
	return v, nil
}

// Verify checks the document's XML signature (reference digest and
// SignedInfo signature) and then the signer chain at time now. It returns
// the parsed manifest and the verified chain (leaf first, pinned root last).
// The first failing step determines the error: ErrMalformed,
// ErrUnsupportedAlgorithm, ErrDigestMismatch, ErrInvalidSignature,
// ErrCertExpired or ErrCertChain.
func (v *Verifier) Verify(doc []byte, now time.Time) (*Manifest, []*x509.Certificate, error) {
	m, err := VerifySignature(doc)
	if err != nil {
		return m, nil, err
	}
	chain, err := v.VerifyChain(m.Certificates, now)
	if err != nil {
		return m, nil, err
	}
	return m, chain, nil
}

// VerifyChain verifies the embedded signer certificates (leaf first) against
// the pinned roots at time now. Self-signed embedded certificates are never
// trusted; the pinned root replaces them. A certificate outside its validity
// period yields ErrCertExpired, any other failure ErrCertChain.
func (v *Verifier) VerifyChain(certs []*x509.Certificate, now time.Time) ([]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no signer certificate", ErrCertChain)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			continue
		}
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		// Report an expiry only when time is the sole problem: the same
		// chain verifies at an instant inside every embedded certificate's
		// validity window.
		if at, ok := commonValidity(certs, now); ok {
			if _, err2 := certs[0].Verify(x509.VerifyOptions{
				Roots: v.roots, Intermediates: inter, CurrentTime: at,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			}); err2 == nil {
				for _, c := range certs {
					if now.Before(c.NotBefore) || now.After(c.NotAfter) {
						return nil, fmt.Errorf("%w: %q valid %s to %s, checked at %s", ErrCertExpired,
							c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339),
							now.UTC().Format(time.RFC3339))
					}
				}
			}
		}
		return nil, fmt.Errorf("%w: %v", ErrCertChain, err)
	}
	for _, ch := range chains {
		if v.pinned[sha256.Sum256(ch[len(ch)-1].Raw)] {
			return ch, nil
		}
	}
	return nil, fmt.Errorf("%w: chain does not end at a pinned root", ErrCertChain)
}

// commonValidity returns an instant inside every certificate's validity
// period, if one exists and some certificate is outside its period at now.
func commonValidity(certs []*x509.Certificate, now time.Time) (time.Time, bool) {
	var from, to time.Time
	outside := false
	for i, c := range certs {
		if i == 0 || c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(to) {
			to = c.NotAfter
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			outside = true
		}
	}
	if !outside || from.After(to) {
		return time.Time{}, false
	}
	return from, true
}

// signature holds the parsed ds:Signature element.
type signature struct {
	elem       *node
	signedInfo *node
	digest     []byte
	value      []byte
	certs      []*x509.Certificate
}

// VerifySignature parses the document and checks its enveloped XML
// signature with the embedded leaf certificate's key. The signer chain is
// NOT checked (see Verifier.VerifyChain). On success the manifest (with its
// embedded certificates) is returned.
func VerifySignature(doc []byte) (*Manifest, error) {
	root, sig, err := parseSigned(doc)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(root, sig.elem)
	if err != nil {
		return nil, err
	}
	m.Certificates = sig.certs
	sum := sha512.Sum384(canonicalize(root, sig.elem))
	if !bytes.Equal(sum[:], sig.digest) {
		return m, fmt.Errorf("%w: computed %x, signed %x", ErrDigestMismatch, sum[:], sig.digest)
	}
	pub, ok := sig.certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return m, fmt.Errorf("%w: signer key is not ECDSA P-384", ErrUnsupportedAlgorithm)
	}
	h := sha512.Sum384(canonicalize(sig.signedInfo, nil))
	r := new(big.Int).SetBytes(sig.value[:48])
	s := new(big.Int).SetBytes(sig.value[48:])
	if !ecdsa.Verify(pub, h[:], r, s) {
		return m, fmt.Errorf("%w: SignedInfo signature does not verify with %q", ErrInvalidSignature, sig.certs[0].Subject.CommonName)
	}
	return m, nil
}

// ParseUnverified parses a RIM without checking its signature. Use it only
// for display or for documents already verified.
func ParseUnverified(doc []byte) (*Manifest, error) {
	root, sig, err := parseSigned(doc)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(root, sig.elem)
	if err != nil {
		return nil, err
	}
	m.Certificates = sig.certs
	return m, nil
}

// CanonicalDocument returns the C14N 1.1 form of the document with its
// ds:Signature element removed (the enveloped-signature transform), i.e. the
// octets whose SHA-384 is the Reference DigestValue.
func CanonicalDocument(doc []byte) ([]byte, error) {
	root, err := parseTree(doc)
	if err != nil {
		return nil, err
	}
	sig, err := findSignature(root)
	if err != nil {
		return nil, err
	}
	return canonicalize(root, sig), nil
}

// CanonicalSignedInfo returns the C14N 1.1 form of the document's
// ds:SignedInfo element with its inherited namespaces: the octets the
// ECDSA-SHA384 SignatureValue signs.
func CanonicalSignedInfo(doc []byte) ([]byte, error) {
	root, err := parseTree(doc)
	if err != nil {
		return nil, err
	}
	sig, err := findSignature(root)
	if err != nil {
		return nil, err
	}
	els, err := sig.onlyElements()
	if err != nil {
		return nil, err
	}
	if len(els) == 0 || !isDSig(els[0], "SignedInfo") {
		return nil, fmt.Errorf("%w: Signature does not start with SignedInfo", ErrMalformed)
	}
	return canonicalize(els[0], nil), nil
}

func isDSig(n *node, local string) bool { return n.uri == NamespaceDSig && n.local == local }

// findSignature returns the single ds:Signature element, which must be a
// child of the document element.
func findSignature(root *node) (*node, error) {
	var found []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.elements() {
			if isDSig(c, "Signature") {
				found = append(found, c)
			}
			walk(c)
		}
	}
	walk(root)
	if isDSig(root, "Signature") {
		return nil, fmt.Errorf("%w: document element is a Signature", ErrMalformed)
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: no ds:Signature element", ErrMalformed)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d ds:Signature elements", ErrMalformed, len(found))
	case found[0].parent != root:
		return nil, fmt.Errorf("%w: ds:Signature is not a child of the document element", ErrMalformed)
	}
	return found[0], nil
}

func algorithm(n *node, local, want string) error {
	if !isDSig(n, local) {
		return fmt.Errorf("%w: expected ds:%s, found {%s}%s", ErrMalformed, local, n.uri, n.local)
	}
	alg, ok := n.attr("", "Algorithm")
	if !ok {
		return fmt.Errorf("%w: ds:%s without Algorithm", ErrMalformed, local)
	}
	if alg != want {
		return fmt.Errorf("%w: ds:%s Algorithm %q, want %q", ErrUnsupportedAlgorithm, local, alg, want)
	}
	if len(n.elements()) != 0 || strings.TrimSpace(n.text()) != "" {
		return fmt.Errorf("%w: ds:%s with parameters", ErrUnsupportedAlgorithm, local)
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// parseSigned parses the document and the structure of its signature,
// enforcing the algorithm profile.
func parseSigned(doc []byte) (*node, *signature, error) {
	root, err := parseTree(doc)
	if err != nil {
		return nil, nil, err
	}
	el, err := findSignature(root)
	if err != nil {
		return nil, nil, err
	}
	sig := &signature{elem: el}
	parts, err := el.onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(parts) != 3 || !isDSig(parts[0], "SignedInfo") || !isDSig(parts[1], "SignatureValue") || !isDSig(parts[2], "KeyInfo") {
		return nil, nil, fmt.Errorf("%w: Signature must hold SignedInfo, SignatureValue, KeyInfo", ErrMalformed)
	}
	sig.signedInfo = parts[0]

	si, err := parts[0].onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(si) != 3 {
		return nil, nil, fmt.Errorf("%w: SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference", ErrUnsupportedAlgorithm)
	}
	if err := algorithm(si[0], "CanonicalizationMethod", AlgC14N11); err != nil {
		return nil, nil, err
	}
	if err := algorithm(si[1], "SignatureMethod", AlgECDSASHA384); err != nil {
		return nil, nil, err
	}
	ref := si[2]
	if !isDSig(ref, "Reference") {
		return nil, nil, fmt.Errorf("%w: expected ds:Reference", ErrMalformed)
	}
	if uri, ok := ref.attr("", "URI"); !ok || uri != "" {
		return nil, nil, fmt.Errorf("%w: Reference URI must be present and empty", ErrUnsupportedAlgorithm)
	}
	refParts, err := ref.onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(refParts) != 3 || !isDSig(refParts[0], "Transforms") {
		return nil, nil, fmt.Errorf("%w: Reference must hold Transforms, DigestMethod, DigestValue", ErrUnsupportedAlgorithm)
	}
	tr, err := refParts[0].onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(tr) != 2 {
		return nil, nil, fmt.Errorf("%w: want exactly the enveloped-signature and C14N 1.1 transforms", ErrUnsupportedAlgorithm)
	}
	if err := algorithm(tr[0], "Transform", AlgEnvelopedSig); err != nil {
		return nil, nil, err
	}
	if err := algorithm(tr[1], "Transform", AlgC14N11); err != nil {
		return nil, nil, err
	}
	if err := algorithm(refParts[1], "DigestMethod", AlgSHA384); err != nil {
		return nil, nil, err
	}
	if !isDSig(refParts[2], "DigestValue") || len(refParts[2].elements()) != 0 {
		return nil, nil, fmt.Errorf("%w: expected ds:DigestValue", ErrMalformed)
	}
	if sig.digest, err = decodeB64(refParts[2].text()); err != nil || len(sig.digest) != sha512.Size384 {
		return nil, nil, fmt.Errorf("%w: DigestValue is not a base64 SHA-384 digest", ErrMalformed)
	}

	if len(parts[1].elements()) != 0 {
		return nil, nil, fmt.Errorf("%w: SignatureValue has child elements", ErrMalformed)
	}
	if sig.value, err = decodeB64(parts[1].text()); err != nil || len(sig.value) != ecdsaP384SignatureSz {
		return nil, nil, fmt.Errorf("%w: SignatureValue is not a base64 96-byte r||s", ErrMalformed)
	}

	ki, err := parts[2].onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(ki) != 1 || !isDSig(ki[0], "X509Data") {
		return nil, nil, fmt.Errorf("%w: KeyInfo must hold one X509Data", ErrMalformed)
	}
	xd, err := ki[0].onlyElements()
	if err != nil {
		return nil, nil, err
	}
	if len(xd) == 0 || len(xd) > maxEmbeddedCerts {
		return nil, nil, fmt.Errorf("%w: X509Data holds %d elements", ErrMalformed, len(xd))
	}
	for _, c := range xd {
		if !isDSig(c, "X509Certificate") || len(c.elements()) != 0 {
			return nil, nil, fmt.Errorf("%w: X509Data may only hold X509Certificate", ErrMalformed)
		}
		der, err := decodeB64(c.text())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: X509Certificate is not base64: %v", ErrMalformed, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: X509Certificate: %v", ErrMalformed, err)
		}
		sig.certs = append(sig.certs, cert)
	}
	return root, sig, nil
}
