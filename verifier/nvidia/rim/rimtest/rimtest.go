// Package rimtest builds synthetic, genuinely signed NVIDIA-style RIMs for
// tests: a test RIM PKI (root → CA → L3 → L4 signer, ECDSA P-384) and SWID
// documents signed with an enveloped XML-DSig (C14N 1.1, SHA-384,
// ECDSA-SHA384 raw r||s) produced by the rim package's own canonicalizer.
// Use PKI.Root as the rim.VerifierOptions root.
package rimtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
)

// PKIOptions sets the validity of the generated certificates.
type PKIOptions struct {
	// NotBefore/NotAfter bound the root, CA and L3 certificates; zero means
	// 2020-01-01 → 2060-01-01.
	NotBefore, NotAfter time.Time
	// SignerNotBefore/SignerNotAfter bound the L4 signer; zero means the CA
	// window.
	SignerNotBefore, SignerNotAfter time.Time
}

// PKI is a test RIM signing hierarchy.
type PKI struct {
	Root      *x509.Certificate
	RootKey   *ecdsa.PrivateKey
	Chain     []*x509.Certificate // signer, L3, CA, root (as NVIDIA embeds it)
	SignerKey *ecdsa.PrivateKey
	// Keys holds the private key of each Chain certificate (same order),
	// e.g. for a fake OCSP responder answering for their children.
	Keys []*ecdsa.PrivateKey
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }

func serial() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120)) }

// NewPKI generates a fresh hierarchy.
func NewPKI(opts PKIOptions) (*PKI, error) {
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if na.IsZero() {
		na = time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	snb, sna := opts.SignerNotBefore, opts.SignerNotAfter
	if snb.IsZero() {
		snb = nb
	}
	if sna.IsZero() {
		sna = na
	}
	type level struct {
		cn     string
		ca     bool
		nb, na time.Time
	}
	levels := []level{
		{"Test CoRIM signing Root CA", true, nb, na},
		{"Test Reference Value GH100 CA", true, nb, na},
		{"Test Reference Value L3 GH100 001", true, nb, na},
		{"Test HCC RIM L4 Signer", false, snb, sna},
	}
	var (
		certs     []*x509.Certificate
		keys      []*ecdsa.PrivateKey
		parent    *x509.Certificate
		parentKey *ecdsa.PrivateKey
	)
	p := &PKI{}
	for _, l := range levels {
		key, err := newKey()
		if err != nil {
			return nil, err
		}
		sn, err := serial()
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          sn,
			Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"Sigil Test"}, CommonName: l.cn},
			NotBefore:             l.nb,
			NotAfter:              l.na,
			BasicConstraintsValid: true,
			IsCA:                  l.ca,
			KeyUsage:              x509.KeyUsageDigitalSignature,
		}
		if l.ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		signer, signerKey := tmpl, key
		if parent != nil {
			signer, signerKey = parent, parentKey
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
		if err != nil {
			return nil, fmt.Errorf("rimtest: create %s: %w", l.cn, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
		keys = append(keys, key)
		parent, parentKey = cert, key
		if p.RootKey == nil {
			p.Root, p.RootKey = cert, key
		}
	}
	p.SignerKey = parentKey
	for i := len(certs) - 1; i >= 0; i-- {
		p.Chain = append(p.Chain, certs[i])
		p.Keys = append(p.Keys, keys[i])
	}
	return p, nil
}

// Spec describes a synthetic RIM.
type Spec struct {
	Name              string // SoftwareIdentity name; default "GH100"
	TagID             string // default derived from ColloquialVersion
	ColloquialVersion string // e.g. "550.90.07" or "96.00.9F.00.01"
	Product           string // default "GH100"
	Edition           string // default "GPU"
	// FirmwareManufacturerID defaults to "5703".
	FirmwareManufacturerID string
	Measurements           []rim.Measurement
}

func attr(b *strings.Builder, name, value string) {
	b.WriteString(" ")
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString(`"`)
}

const (
	digestPlaceholder = "DIGEST-PLACEHOLDER"
	sigPlaceholder    = "SIGNATURE-PLACEHOLDER"
)

// Unsigned renders the RIM document with placeholder DigestValue and
// SignatureValue; KeyInfo holds chain (leaf first).
func Unsigned(spec Spec, chain []*x509.Certificate) []byte {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	var b strings.Builder
	b.WriteString(`<SoftwareIdentity xmlns="` + rim.NamespaceSWID + `" xmlns:ns0="` + rim.NamespaceSWID + `" xmlns:ns2="` + rim.NamespaceSHA384 + `"`)
	attr(&b, "corpus", "false")
	attr(&b, "name", def(spec.Name, "GH100"))
	attr(&b, "patch", "false")
	attr(&b, "supplemental", "false")
	attr(&b, "tagId", def(spec.TagID, "sigil-test-"+spec.ColloquialVersion))
	attr(&b, "version", "1.0")
	attr(&b, "tagVersion", "0")
	b.WriteString(">\n    <ns0:Entity name=\"NVIDIA Corporation\" role=\"softwareCreator tagCreator\"/>\n")
	b.WriteString(`    <ns0:Meta xmlns:ns1="` + rim.NamespaceTCGRIM + `"`)
	attr(&b, "colloquialVersion", spec.ColloquialVersion)
	attr(&b, "edition", def(spec.Edition, "GPU"))
	attr(&b, "product", def(spec.Product, "GH100"))
	attr(&b, "revision", "r1")
	attr(&b, "PayloadType", "direct")
	attr(&b, "ns1:BindingSpec", "RIMIM")
	attr(&b, "ns1:BindingSpecVersion", "1.01")
	attr(&b, "ns1:FirmwareManufacturer", "NVIDIA Corporation")
	attr(&b, "ns1:FirmwareManufacturerId", def(spec.FirmwareManufacturerID, "5703"))
	b.WriteString("/>\n    <ns0:Payload xmlns:SHA384=\"" + rim.NamespaceSHA384 + "\">\n")
	for _, m := range spec.Measurements {
		b.WriteString(`        <ns0:Resource type="Measurement"`)
		attr(&b, "index", strconv.Itoa(m.Index))
		active := "False"
		if m.Active {
			active = "True"
		}
		attr(&b, "active", active)
		attr(&b, "alternatives", strconv.Itoa(len(m.Alternatives)))
		for k, h := range m.Alternatives {
			attr(&b, "ns2:Hash"+strconv.Itoa(k), h)
		}
		attr(&b, "name", def(m.Name, "Measurement_"+strconv.Itoa(m.Index)))
		size := m.Size
		if size == 0 {
			size = 48
		}
		attr(&b, "size", strconv.Itoa(size))
		b.WriteString("/>\n")
	}
	b.WriteString("    </ns0:Payload>\n")
	b.WriteString(`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
		`<ds:CanonicalizationMethod Algorithm="` + rim.AlgC14N11 + `"/>` +
		`<ds:SignatureMethod Algorithm="` + rim.AlgECDSASHA384 + `"/>` +
		`<ds:Reference URI=""><ds:Transforms>` +
		`<ds:Transform Algorithm="` + rim.AlgEnvelopedSig + `"/>` +
		`<ds:Transform Algorithm="` + rim.AlgC14N11 + `"/></ds:Transforms>` +
		`<ds:DigestMethod Algorithm="` + rim.AlgSHA384 + `"/>` +
		`<ds:DigestValue>` + digestPlaceholder + `</ds:DigestValue></ds:Reference></ds:SignedInfo>` +
		`<ds:SignatureValue>` + sigPlaceholder + `</ds:SignatureValue><ds:KeyInfo><ds:X509Data>`)
	for _, c := range chain {
		b.WriteString("<ds:X509Certificate>")
		b.WriteString(base64.StdEncoding.EncodeToString(c.Raw))
		b.WriteString("</ds:X509Certificate>")
	}
	b.WriteString("</ds:X509Data></ds:KeyInfo></ds:Signature></SoftwareIdentity>\n")
	return []byte(b.String())
}

// Sign renders spec and signs it with the PKI's L4 signer.
func (p *PKI) Sign(spec Spec) ([]byte, error) {
	return SignDocument(Unsigned(spec, p.Chain), p.SignerKey)
}

// SignDocument fills in the DigestValue and SignatureValue placeholders of a
// document produced by Unsigned (or any document using the same
// placeholders) using key.
func SignDocument(doc []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	canon, err := rim.CanonicalDocument(doc)
	if err != nil {
		return nil, err
	}
	d := sha512.Sum384(canon)
	s := strings.Replace(string(doc), digestPlaceholder, base64.StdEncoding.EncodeToString(d[:]), 1)
	si, err := rim.CanonicalSignedInfo([]byte(s))
	if err != nil {
		return nil, err
	}
	h := sha512.Sum384(si)
	r, ss, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 96)
	r.FillBytes(raw[:48])
	ss.FillBytes(raw[48:])
	s = strings.Replace(s, sigPlaceholder, base64.StdEncoding.EncodeToString(raw), 1)
	return []byte(s), nil
}

// Digest returns a deterministic 48-byte test digest (lower-case hex) for
// a label, handy for synthetic measurements.
func Digest(label string) string {
	sum := sha512.Sum384([]byte(label))
	return fmt.Sprintf("%x", sum[:])
}
