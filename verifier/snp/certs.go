package snp

import (
	"bytes"
	"crypto/x509"
	"embed"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Product is an AMD EPYC processor generation, spelled as AMD's KDS URLs
// spell it.
type Product string

// Supported products.
const (
	Milan Product = "Milan"
	Genoa Product = "Genoa"
	Turin Product = "Turin"
)

// Products lists the supported products.
var Products = []Product{Milan, Genoa, Turin}

//go:embed roots/*.pem
var embeddedRoots embed.FS

// DefaultRootBundle returns the embedded AMD CA bundle of a product: PEM,
// ASK, ARK, ASVK in that order (the files Trustee ships).
func DefaultRootBundle(p Product) ([]byte, error) {
	b, err := embeddedRoots.ReadFile("roots/" + strings.ToLower(string(p)) + "_ask_ark_asvk.pem")
	if err != nil {
		return nil, fmt.Errorf("%w: no embedded roots for %q", ErrUnknownProduct, p)
	}
	return b, nil
}

// ProductCerts are the AMD CA certificates of one product.
type ProductCerts struct {
	ASK  *x509.Certificate // signs VCEKs
	ARK  *x509.Certificate // self-signed root
	ASVK *x509.Certificate // signs VLEKs
}

// ParseRootBundle parses a PEM bundle holding exactly three certificates in
// the order ASK, ARK, ASVK and checks that the ARK is self-signed and signs
// the ASK and the ASVK.
func ParseRootBundle(pemBytes []byte) (*ProductCerts, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse root bundle: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 3 {
		return nil, fmt.Errorf("parse root bundle: %d certificates, want 3 (ASK, ARK, ASVK)", len(certs))
	}
	pc := &ProductCerts{ASK: certs[0], ARK: certs[1], ASVK: certs[2]}
	if err := pc.ARK.CheckSignatureFrom(pc.ARK); err != nil {
		return nil, fmt.Errorf("parse root bundle: ARK self-signature: %w", err)
	}
	if err := pc.ASK.CheckSignatureFrom(pc.ARK); err != nil {
		return nil, fmt.Errorf("parse root bundle: ASK not signed by ARK: %w", err)
	}
	if err := pc.ASVK.CheckSignatureFrom(pc.ARK); err != nil {
		return nil, fmt.Errorf("parse root bundle: ASVK not signed by ARK: %w", err)
	}
	return pc, nil
}

// AMD VCEK/VLEK certificate extension OIDs (AMD KDS specification).
var (
	oidStructVersion = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 1}
	oidProductName   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 2}
	oidBlSPL         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 1}
	oidTeeSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 2}
	oidSnpSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 3}
	oidUcodeSPL      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 8}
	oidFmcSPL        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 9}
	oidHWID          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}
	oidCSPID         = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 5}
)

// KeyKind says whether an endorsement key is a VCEK or a VLEK.
type KeyKind string

// Endorsement key kinds.
const (
	KindVCEK KeyKind = "VCEK"
	KindVLEK KeyKind = "VLEK"
)

// VEKInfo is what the AMD extensions of a VCEK or VLEK certificate say.
type VEKInfo struct {
	// Kind is VCEK or VLEK, from the subject common name (SEV-VCEK /
	// SEV-VLEK) or, failing that, from the presence of hwID (VCEK) or
	// csp_id (VLEK).
	Kind KeyKind
	// ProductName is the productName extension, e.g. "Milan-B0" or "Genoa".
	ProductName string
	// TCB holds the SPL extensions; HasFMC is set when fmcSPL is present.
	TCB TCBVersion
	// HWID is the hwID extension (64 bytes, or 8 for Turin), nil for VLEKs.
	HWID []byte
	// CSPID is the VLEK csp_id extension, if present.
	CSPID string
}

// Product returns the product named by ProductName ("Milan-B0" → Milan).
func (i *VEKInfo) Product() (Product, error) {
	name, _, _ := strings.Cut(i.ProductName, "-")
	for _, p := range Products {
		if strings.EqualFold(name, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: productName %q", ErrUnknownProduct, i.ProductName)
}

// ParseVEKExtensions reads the AMD extensions of a VCEK or VLEK
// certificate. SPLs are DER INTEGERs; hwID is either the raw 64 bytes
// (legacy certificates) or a DER OCTET STRING wrapping them; productName is
// a DER IA5String (raw text is accepted too).
func ParseVEKExtensions(cert *x509.Certificate) (*VEKInfo, error) {
	info := &VEKInfo{}
	seen := map[string]bool{}
	for _, ext := range cert.Extensions {
		key := ext.Id.String()
		if seen[key] {
			return nil, fmt.Errorf("%w: duplicate extension %s", ErrBadVEKExtensions, key)
		}
		seen[key] = true
		var err error
		switch {
		case ext.Id.Equal(oidProductName):
			info.ProductName, err = derString(ext.Value)
		case ext.Id.Equal(oidBlSPL):
			info.TCB.Bootloader, err = derSPL(ext.Value)
		case ext.Id.Equal(oidTeeSPL):
			info.TCB.TEE, err = derSPL(ext.Value)
		case ext.Id.Equal(oidSnpSPL):
			info.TCB.SNP, err = derSPL(ext.Value)
		case ext.Id.Equal(oidUcodeSPL):
			info.TCB.Microcode, err = derSPL(ext.Value)
		case ext.Id.Equal(oidFmcSPL):
			info.TCB.FMC, err = derSPL(ext.Value)
			info.TCB.HasFMC = true
		case ext.Id.Equal(oidHWID):
			info.HWID, err = derHWID(ext.Value)
		case ext.Id.Equal(oidCSPID):
			info.CSPID, err = derString(ext.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadVEKExtensions, key, err)
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{oidBlSPL, oidTeeSPL, oidSnpSPL, oidUcodeSPL} {
		if !seen[oid.String()] {
			return nil, fmt.Errorf("%w: missing SPL extension %s", ErrBadVEKExtensions, oid)
		}
	}
	switch cn := cert.Subject.CommonName; {
	case strings.HasSuffix(cn, "VCEK"):
		info.Kind = KindVCEK
	case strings.HasSuffix(cn, "VLEK"):
		info.Kind = KindVLEK
	case info.HWID != nil:
		info.Kind = KindVCEK
	default:
		info.Kind = KindVLEK
	}
	if info.Kind == KindVCEK && info.HWID == nil {
		return nil, fmt.Errorf("%w: VCEK without hwID", ErrBadVEKExtensions)
	}
	return info, nil
}

func derSPL(v []byte) (uint8, error) {
	var n int64
	rest, err := asn1.Unmarshal(v, &n)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 {
		return 0, errors.New("trailing bytes")
	}
	if n < 0 || n > 255 {
		return 0, fmt.Errorf("SPL %d out of range", n)
	}
	return uint8(n), nil
}

func derString(v []byte) (string, error) {
	var s string
	if rest, err := asn1.Unmarshal(v, &s); err == nil && len(rest) == 0 {
		return s, nil
	}
	// Not DER: take printable raw text, as early certificates stored it.
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "", errors.New("not a DER string")
		}
	}
	return string(v), nil
}

// derHWID follows Trustee: a value of exactly 64 bytes is the raw hwID
// (legacy encoding); anything else must be a DER OCTET STRING.
func derHWID(v []byte) ([]byte, error) {
	if len(v) == 64 {
		return bytes.Clone(v), nil
	}
	var id []byte
	rest, err := asn1.Unmarshal(v, &id)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	if len(id) != 64 && len(id) != 8 {
		return nil, fmt.Errorf("hwID is %d bytes, want 64 (or 8 for Turin)", len(id))
	}
	return id, nil
}

// CertChain holds the certificates that come with a report. Each is DER or
// PEM; empty fields are absent. At most one of VCEK and VLEK is needed: the
// one matching the report's SIGNING_KEY. ASK (the ASVK for a VLEK) and ARK
// are optional: an ASK given here must be signed by the trusted ARK, and an
// ARK given here must be the trusted ARK itself.
type CertChain struct {
	VCEK []byte
	VLEK []byte
	ASK  []byte
	ARK  []byte
}

// decodeCertBytes returns DER for DER or PEM input.
func decodeCertBytes(b []byte) []byte {
	if block, _ := pem.Decode(b); block != nil && block.Type == "CERTIFICATE" {
		return block.Bytes
	}
	return b
}
