// Package nvidiatest builds synthetic NVIDIA device evidence for tests: a
// test PKI shaped like NVIDIA's five-level device hierarchy (root →
// Identity → Provisioner ICA → BROM → FMC leaf, ECDSA P-384, leaf with the
// FWID extension) and SPDM 1.1 GET_MEASUREMENTS request ‖ MEASUREMENTS
// response reports signed by the leaf over a chosen nonce.
//
// It is for tests only (here and in other packages); product code must not
// import it. It does not import package nvidia, so that package's internal
// tests can use it.
package nvidiatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Architectures as written in evidence.
const (
	Hopper    = "HOPPER"
	Blackwell = "BLACKWELL"
	LS10      = "LS10"
)

var (
	oidTcbInfoHopper    = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1}
	oidTcbInfoBlackwell = asn1.ObjectIdentifier{2, 23, 133, 5, 4, 1, 1}
	oidSHA384           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
)

// Hierarchy is a test device PKI: a self-signed root and an Identity CA.
type Hierarchy struct {
	Root        *x509.Certificate
	RootKey     *ecdsa.PrivateKey
	Identity    *x509.Certificate
	IdentityKey *ecdsa.PrivateKey
	// NotBefore/NotAfter bound every certificate issued by NewDevice.
	NotBefore, NotAfter time.Time
}

// NewHierarchy creates a root "Test Device Identity CA" and an Identity CA,
// valid from notBefore to notAfter.
func NewHierarchy(notBefore, notAfter time.Time) (*Hierarchy, error) {
	h := &Hierarchy{NotBefore: notBefore, NotAfter: notAfter}
	var err error
	if h.RootKey, err = newKey(); err != nil {
		return nil, err
	}
	rootTmpl := caTemplate("Test Device Identity CA", notBefore, notAfter)
	if h.Root, err = issue(rootTmpl, rootTmpl, &h.RootKey.PublicKey, h.RootKey); err != nil {
		return nil, err
	}
	if h.IdentityKey, err = newKey(); err != nil {
		return nil, err
	}
	if h.Identity, err = issue(caTemplate("Test GH100 Identity", notBefore, notAfter), h.Root, &h.IdentityKey.PublicKey, h.RootKey); err != nil {
		return nil, err
	}
	return h, nil
}

// DeviceOptions shape a synthetic device.
type DeviceOptions struct {
	// FWID is the firmware id put in the leaf extension (48 bytes); nil
	// means random.
	FWID []byte
	// OmitFWIDExtension leaves the FWID extension out of the leaf.
	OmitFWIDExtension bool
}

// Device is one synthetic GPU or switch with its four-level chain.
type Device struct {
	Arch    string
	FWID    []byte
	ICA     *x509.Certificate
	ICAKey  *ecdsa.PrivateKey // signs OCSP answers for the BROM in tests
	BROM    *x509.Certificate
	BROMKey *ecdsa.PrivateKey
	Leaf    *x509.Certificate
	LeafKey *ecdsa.PrivateKey
	// Chain is leaf, BROM, ICA, Identity, root.
	Chain []*x509.Certificate
}

func models(arch string) (leaf, brom, ica string) {
	switch arch {
	case Blackwell:
		return "GB100 A01 GSP FMC LF", "GB100 A01 GSP BROM", "Test GB100 Provisioner ICA 00000"
	case LS10:
		return "LS_10 A01 FSP FMC LF", "LS_10 A01 FSP BROM", "Test LS_10 Provisioner ICA 1"
	}
	return "GH100 A01 GSP FMC LF", "GH100 A01 GSP BROM", "Test GH100 Provisioner ICA 1"
}

// NewDevice issues a Provisioner ICA, a BROM and an FMC leaf for arch.
func (h *Hierarchy) NewDevice(arch string, o DeviceOptions) (*Device, error) {
	d := &Device{Arch: arch, FWID: o.FWID}
	if d.FWID == nil {
		d.FWID = make([]byte, 48)
		if _, err := rand.Read(d.FWID); err != nil {
			return nil, err
		}
	}
	leafCN, bromCN, icaCN := models(arch)
	icaKey, err := newKey()
	if err != nil {
		return nil, err
	}
	if d.ICA, err = issue(caTemplate(icaCN, h.NotBefore, h.NotAfter), h.Identity, &icaKey.PublicKey, h.IdentityKey); err != nil {
		return nil, err
	}
	bromKey, err := newKey()
	if err != nil {
		return nil, err
	}
	if d.BROM, err = issue(caTemplate(bromCN, h.NotBefore, h.NotAfter), d.ICA, &bromKey.PublicKey, icaKey); err != nil {
		return nil, err
	}
	if d.LeafKey, err = newKey(); err != nil {
		return nil, err
	}
	serial, err := randSerial()
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			SerialNumber: fmt.Sprintf("%X", serial),
			Country:      []string{"US"},
			Organization: []string{"NVIDIA Corporation"},
			CommonName:   leafCN,
		},
		NotBefore: h.NotBefore,
		NotAfter:  h.NotAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	if !o.OmitFWIDExtension {
		ext, err := fwidExtension(arch, &d.LeafKey.PublicKey, d.FWID)
		if err != nil {
			return nil, err
		}
		leaf.ExtraExtensions = []pkix.Extension{ext}
	}
	if d.Leaf, err = issue(leaf, d.BROM, &d.LeafKey.PublicKey, bromKey); err != nil {
		return nil, err
	}
	d.ICAKey, d.BROMKey = icaKey, bromKey
	d.Chain = []*x509.Certificate{d.Leaf, d.BROM, d.ICA, h.Identity, h.Root}
	return d, nil
}

// ChainPEM returns the chain as a PEM bundle, leaf first.
func (d *Device) ChainPEM() []byte { return ChainPEM(d.Chain...) }

// ChainPEM encodes certificates as a PEM bundle in the given order.
func ChainPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func fwidExtension(arch string, pub *ecdsa.PublicKey, fwid []byte) (pkix.Extension, error) {
	if arch == Blackwell {
		type fw struct {
			HashAlg asn1.ObjectIdentifier
			Digest  []byte
		}
		type tcbInfo struct {
			Vendor string `asn1:"optional,tag:0,utf8"`
			Model  string `asn1:"optional,tag:1,utf8"`
			FWIDs  []fw   `asn1:"optional,tag:6"`
		}
		v, err := asn1.Marshal(tcbInfo{Vendor: "NVIDIA", Model: "GB100 A01 GSP", FWIDs: []fw{{oidSHA384, fwid}}})
		if err != nil {
			return pkix.Extension{}, err
		}
		return pkix.Extension{Id: oidTcbInfoBlackwell, Value: v}, nil
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return pkix.Extension{}, err
	}
	type digest struct {
		Alg   asn1.ObjectIdentifier
		Value []byte
	}
	type hopperExt struct {
		Version int
		SPKI    asn1.RawValue
		FWID    digest
	}
	v, err := asn1.Marshal(hopperExt{Version: 1, SPKI: asn1.RawValue{FullBytes: spki}, FWID: digest{oidSHA384, fwid}})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidTcbInfoHopper, Value: v}, nil
}

// TLV is one NVIDIA opaque-data item.
type TLV struct {
	Type uint16
	Data []byte
}

// Opaque type numbers used by DefaultOpaque.
const (
	TypeDriverVersion = 3
	TypeVBIOSVersion  = 6
	TypeNVDEC0Status  = 11
	TypeMsrsCnt       = 12
	TypeChipSKU       = 15
	TypeProject       = 17
	TypeProjectSKU    = 18
	TypeFWID          = 20
	TypeSwitchPDI     = 22
	TypeSwitchGPUPDIs = 26
)

// DefaultOpaque returns plausible opaque data for the device: for GPUs
// driver 550.90.07, VBIOS 96.00.9f.00.01, project 1010/0200/882, NVDEC0
// disabled, measurement counts and the FWID; for switches BIOS
// "96.10.55.00.01", a device PDI and GPU PDIs (no FWID, like real switches).
func (d *Device) DefaultOpaque(blocks int) []TLV {
	cnt := make([]byte, 4*blocks)
	for i := range blocks {
		binary.LittleEndian.PutUint32(cnt[4*i:], uint32(i%3))
	}
	if d.Arch == LS10 {
		return []TLV{
			{TypeVBIOSVersion, []byte("96.10.55.00.01")},
			{TypeSwitchPDI, []byte{0x20, 0x3e, 0xb3, 0x1a, 0xd9, 0xed, 0x00, 0x08}},
			{TypeMsrsCnt, cnt},
			{TypeSwitchGPUPDIs, make([]byte, 128)},
		}
	}
	return []TLV{
		{TypeVBIOSVersion, []byte{0x00, 0x9f, 0x00, 0x96, 0x01, 0x00, 0x00, 0x00}},
		{TypeProject, []byte("1010\x00")},
		{TypeProjectSKU, []byte("0200\x00")},
		{TypeChipSKU, []byte("882\x00\x00\x00\x00\x00\x00")},
		{TypeDriverVersion, []byte("550.90.07\x00")},
		{TypeMsrsCnt, cnt},
		{TypeNVDEC0Status, []byte{0x55}},
		{TypeFWID, d.FWID},
	}
}

// ReportOptions shape a synthetic report.
type ReportOptions struct {
	// Nonce is the requester nonce (32 bytes; shorter is zero-padded).
	Nonce []byte
	// Measurements are the SHA-384 values of SPDM indices 1…n. Nil means
	// Blocks deterministic values.
	Measurements [][]byte
	// Blocks is the number of default measurements when Measurements is
	// nil; 0 means 64 for GPUs and 31 for switches.
	Blocks int
	// Opaque overrides the opaque TLVs; nil means DefaultOpaque.
	Opaque []TLV
	// Trailing is appended after the signature (not signed).
	Trailing []byte
}

// DefaultMeasurement is the deterministic value of SPDM index i (1-based)
// used when ReportOptions.Measurements is nil.
func DefaultMeasurement(i int) []byte {
	h := sha512.Sum384([]byte(fmt.Sprintf("measurement %d", i)))
	return h[:]
}

// Report returns a signed SPDM GET_MEASUREMENTS request ‖ MEASUREMENTS
// response.
func (d *Device) Report(o ReportOptions) ([]byte, error) {
	meas := o.Measurements
	if meas == nil {
		n := o.Blocks
		if n == 0 {
			n = 64
			if d.Arch == LS10 {
				n = 31
			}
		}
		for i := 1; i <= n; i++ {
			meas = append(meas, DefaultMeasurement(i))
		}
	}
	if len(meas) > 255 {
		return nil, errors.New("nvidiatest: more than 255 measurements")
	}
	opaque := o.Opaque
	if opaque == nil {
		opaque = d.DefaultOpaque(len(meas))
	}
	var nonce [32]byte
	copy(nonce[:], o.Nonce)

	b := []byte{0x11, 0xE0, 0x01, 0xFF}
	b = append(b, nonce[:]...)
	b = append(b, 0x00)

	var rec []byte
	for i, m := range meas {
		rec = append(rec, byte(i+1), 0x01)
		rec = binary.LittleEndian.AppendUint16(rec, uint16(3+len(m)))
		rec = append(rec, 0x01)
		rec = binary.LittleEndian.AppendUint16(rec, uint16(len(m)))
		rec = append(rec, m...)
	}
	b = append(b, 0x11, 0x60, 0x00, 0x00, byte(len(meas)), byte(len(rec)), byte(len(rec)>>8), byte(len(rec)>>16))
	b = append(b, rec...)
	respNonce := make([]byte, 32)
	if _, err := rand.Read(respNonce); err != nil {
		return nil, err
	}
	b = append(b, respNonce...)
	var op []byte
	for _, t := range opaque {
		op = binary.LittleEndian.AppendUint16(op, t.Type)
		op = binary.LittleEndian.AppendUint16(op, uint16(len(t.Data)))
		op = append(op, t.Data...)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(op)))
	b = append(b, op...)
	sig, err := Sign(d.LeafKey, b)
	if err != nil {
		return nil, err
	}
	b = append(b, sig...)
	return append(b, o.Trailing...), nil
}

// Sign returns the raw 96-byte r‖s ECDSA P-384 signature over SHA-384(msg).
func Sign(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha512.Sum384(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return sig, nil
}

// Entry is one Trustee device_evidence_list item.
type Entry struct {
	Arch        string `json:"arch"`
	UUID        string `json:"uuid,omitempty"`
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

// Entry wraps a report of this device as a Trustee evidence entry, the
// report in standard base64 (as NVAT emits it).
func (d *Device) Entry(uuid string, report []byte) Entry {
	return Entry{
		Arch:        d.Arch,
		UUID:        uuid,
		Evidence:    base64.StdEncoding.EncodeToString(report),
		Certificate: base64.StdEncoding.EncodeToString(d.ChainPEM()),
	}
}

// HexEntry is Entry with the report in hex (as Trustee's samples).
func (d *Device) HexEntry(uuid string, report []byte) Entry {
	e := d.Entry(uuid, report)
	e.Evidence = hex.EncodeToString(report)
	return e
}

// EvidenceJSON returns {"device_evidence_list":[entries…]}.
func EvidenceJSON(entries ...Entry) []byte {
	b, err := json.Marshal(struct {
		List []Entry `json:"device_evidence_list"`
	}{entries})
	if err != nil {
		panic(err) // cannot happen: only strings
	}
	return b
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }

func randSerial() (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	b[0] |= 0x40
	return new(big.Int).SetBytes(b), nil
}

func caTemplate(cn string, nb, na time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"NVIDIA"}, CommonName: cn},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, error) {
	if tmpl.SerialNumber == nil {
		s, err := randSerial()
		if err != nil {
			return nil, err
		}
		tmpl.SerialNumber = s
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("nvidiatest: create %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}
