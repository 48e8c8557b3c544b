package nvidia

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ChainLength is the number of certificates of a device chain: FMC leaf,
// BROM, Provisioner ICA, Identity, Device Identity CA root.
const ChainLength = 5

// DeviceRootFingerprint is the SHA-256 of the DER of the embedded
// "NVIDIA Device Identity CA" root (nvidia_device_root.pem).
const DeviceRootFingerprint = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"

//go:embed nvidia_device_root.pem
var deviceRootPEM []byte

// FWID extension OIDs (TCG DICE).
var (
	// OIDTcbInfoHopper is the extension whose last 48 bytes hold the FWID on
	// Hopper and LS10 leaves (2.23.133.5.4.1).
	OIDTcbInfoHopper = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}
	// OIDTcbInfoBlackwell is the DICE TcbInfo extension of Blackwell leaves
	// (2.23.133.5.4.1.1); the FWID is fwids[0].digest.
	OIDTcbInfoBlackwell = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1, 1}
)

// DefaultRoots returns the embedded NVIDIA Device Identity CA, checked
// against DeviceRootFingerprint.
func DefaultRoots() ([]*x509.Certificate, error) {
	certs, err := ParseCertChain(deviceRootPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w: embedded root holds %d certificates", ErrCertChain, len(certs))
	}
	sum := sha256.Sum256(certs[0].Raw)
	if hex.EncodeToString(sum[:]) != DeviceRootFingerprint {
		return nil, fmt.Errorf("%w: embedded root fingerprint mismatch", ErrCertChain)
	}
	return certs, nil
}

// ParseCertChain decodes a PEM bundle (leaf first) into certificates.
func ParseCertChain(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", ErrCertChain, len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrCertChain)
	}
	return certs, nil
}

// tcbFWID is one entry of DiceTcbInfo.fwids.
type tcbFWID struct {
	HashAlg asn1.ObjectIdentifier
	Digest  []byte
}

// diceTcbInfo is TCG DICE TcbInfo; only fwids is used.
type diceTcbInfo struct {
	Vendor     asn1.RawValue `asn1:"optional,tag:0"`
	Model      asn1.RawValue `asn1:"optional,tag:1"`
	Version    asn1.RawValue `asn1:"optional,tag:2"`
	SVN        asn1.RawValue `asn1:"optional,tag:3"`
	Layer      asn1.RawValue `asn1:"optional,tag:4"`
	Index      asn1.RawValue `asn1:"optional,tag:5"`
	FWIDs      []tcbFWID     `asn1:"optional,tag:6"`
	Flags      asn1.RawValue `asn1:"optional,tag:7"`
	VendorInfo asn1.RawValue `asn1:"optional,tag:8"`
	Type       asn1.RawValue `asn1:"optional,tag:9"`
}

// CertFWID extracts the FWID from a device leaf certificate: for Hopper
// and LS10 the last 48 bytes of extension 2.23.133.5.4.1, for Blackwell
// fwids[0].digest of the DICE TcbInfo extension 2.23.133.5.4.1.1.
func CertFWID(leaf *x509.Certificate, arch Arch) ([]byte, error) {
	oid := OIDTcbInfoHopper
	if arch == ArchBlackwell {
		oid = OIDTcbInfoBlackwell
	}
	for _, ext := range leaf.Extensions {
		if !ext.Id.Equal(oid) {
			continue
		}
		if arch != ArchBlackwell {
			if len(ext.Value) < fwidSize {
				return nil, fmt.Errorf("%w: extension %s shorter than %d bytes", ErrFWID, oid, fwidSize)
			}
			return ext.Value[len(ext.Value)-fwidSize:], nil
		}
		var info diceTcbInfo
		rest, err := asn1.Unmarshal(ext.Value, &info)
		if err != nil {
			return nil, fmt.Errorf("%w: DICE TcbInfo: %w", ErrFWID, err)
		}
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: trailing bytes after DICE TcbInfo", ErrFWID)
		}
		if len(info.FWIDs) == 0 || len(info.FWIDs[0].Digest) == 0 {
			return nil, fmt.Errorf("%w: DICE TcbInfo has no fwids", ErrFWID)
		}
		return info.FWIDs[0].Digest, nil
	}
	return nil, fmt.Errorf("%w: leaf %q has no FWID extension %s", ErrFWID, leaf.Subject.CommonName, oid)
}

// archFromModel derives the architecture from a device certificate common
// name ("GH100 A01 GSP FMC LF", "GB100 …", "LS_10 …"); "" when unknown.
// The leaf (certificate 0) and the BROM (certificate 1, issued by NVIDIA's
// provisioner) both name the device model.
func archFromModel(cn string) Arch {
	model, _, _ := strings.Cut(cn, " ")
	switch {
	case model == "GH100":
		return ArchHopper
	case strings.HasPrefix(model, "GB"):
		return ArchBlackwell
	case model == "LS_10":
		return ArchLS10
	}
	return ""
}

// chainInfo is what a verified device chain yields; cached per chain.
type chainInfo struct {
	certs    []*x509.Certificate
	leafKey  *ecdsa.PublicKey
	certFWID []byte // nil with fwidErr set when the extension is absent/bad
	fwidErr  error
	hwmodel  string // CN of certificate 1
	ueid     string // decimal leaf serial
	// leafArch and bromArch are the architectures the leaf and BROM
	// common names name ("" when unknown).
	leafArch, bromArch Arch
	// validity window of the whole chain
	notBefore, notAfter time.Time
}

// chainError carries the claim-level status of a failed chain.
type chainError struct {
	status string // "invalid" | "expired"
	err    error
}

func (e *chainError) Error() string { return e.err.Error() }
func (e *chainError) Unwrap() error { return e.err }

// verifyChain checks a device chain: exactly ChainLength certificates, the
// last one byte-equal to a trusted root, every certificate signed by the
// next one in the given order, valid at now, leaf key ECDSA P-384. The FWID
// extension is extracted but its absence is reported in fwidErr, not as a
// chain failure.
func verifyChain(certs []*x509.Certificate, roots []*x509.Certificate, arch Arch, now time.Time) (*chainInfo, error) {
	return verifyChainLen(certs, roots, arch, now, ChainLength)
}

// verifyChainLen is verifyChain with the required length as a parameter
// (tests use it to show what the X.509 checks alone conclude).
func verifyChainLen(certs []*x509.Certificate, roots []*x509.Certificate, arch Arch, now time.Time, wantLen int) (*chainInfo, error) {
	if len(certs) != wantLen || len(certs) < 2 {
		return nil, &chainError{"invalid", fmt.Errorf("%w: %w: %d certificates, want %d", ErrCertChain, ErrChainLength, len(certs), wantLen)}
	}
	last := certs[len(certs)-1]
	pool := x509.NewCertPool()
	pinned := false
	for _, r := range roots {
		pool.AddCert(r)
		if bytes.Equal(r.Raw, last.Raw) {
			pinned = true
		}
	}
	if !pinned {
		return nil, &chainError{"invalid", fmt.Errorf("%w: chain does not end at a trusted root (got %q)", ErrCertChain, last.Subject.CommonName)}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		status := "invalid"
		var ie x509.CertificateInvalidError
		if errors.As(err, &ie) && ie.Reason == x509.Expired {
			status = "expired"
		}
		return nil, &chainError{status, fmt.Errorf("%w: %w", ErrCertChain, err)}
	}
	if !inOrder(chains, certs) {
		return nil, &chainError{"invalid", fmt.Errorf("%w: certificates are not in leaf-to-root order", ErrCertChain)}
	}
	key, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P384() {
		return nil, &chainError{"invalid", fmt.Errorf("%w: leaf key is not ECDSA P-384", ErrCertChain)}
	}
	info := &chainInfo{
		certs:     certs,
		leafKey:   key,
		hwmodel:   certs[1].Subject.CommonName,
		ueid:      certs[0].SerialNumber.String(),
		leafArch:  archFromModel(certs[0].Subject.CommonName),
		bromArch:  archFromModel(certs[1].Subject.CommonName),
		notBefore: certs[0].NotBefore,
		notAfter:  certs[0].NotAfter,
	}
	for _, c := range certs[1:] {
		if c.NotBefore.After(info.notBefore) {
			info.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(info.notAfter) {
			info.notAfter = c.NotAfter
		}
	}
	info.certFWID, info.fwidErr = CertFWID(certs[0], arch)
	return info, nil
}

// checkArch requires the declared arch to be the one both the leaf and the
// BROM certificate name.
func (c *chainInfo) checkArch(declared Arch) error {
	if c.leafArch == declared && c.bromArch == declared {
		return nil
	}
	name := func(a Arch) string {
		if a == "" {
			return "no known architecture"
		}
		return string(a)
	}
	return fmt.Errorf("%w: evidence declares %s, but the leaf certificate %q names %s and the BROM certificate %q names %s",
		ErrArchMismatch, declared, c.certs[0].Subject.CommonName, name(c.leafArch), c.hwmodel, name(c.bromArch))
}

func inOrder(chains [][]*x509.Certificate, certs []*x509.Certificate) bool {
	for _, ch := range chains {
		if len(ch) != len(certs) {
			continue
		}
		ok := true
		for i := range ch {
			if !ch[i].Equal(certs[i]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Verified chains are cached by SHA-256(arch ‖ chain bytes) in a bounded
// FIFO (Verifier.cache). Only successful verifications are stored; an entry
// is used only while the clock is inside its validity.

func chainKey(arch Arch, chainPEM []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(arch))
	h.Write([]byte{0})
	h.Write(chainPEM)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// cachedChain returns the cached chain for k if the clock is inside its
// validity.
func (v *Verifier) cachedChain(k [32]byte, now time.Time) *chainInfo {
	info, _ := v.cache.Get(k)
	if info == nil || now.Before(info.notBefore) || now.After(info.notAfter) {
		return nil
	}
	return info
}
