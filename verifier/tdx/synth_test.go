package tdx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// Synthetic quotes: a test PKI (root → "platform CA" → PCK leaf with an SGX
// extension) and a quote builder, for layouts the real vectors lack (v5)
// and for PCK extension variants.

type sgxExtOpts struct {
	fmspc, pceid, ppid []byte
	comps              [16]byte
	pcesvn             int
	sgxType            int
	platformInstance   []byte // nil: omitted
	config             []bool // nil: omitted; else dynamic, cached, smt
}

func defaultSGXExt() sgxExtOpts {
	return sgxExtOpts{
		fmspc:            []byte{0x90, 0xc0, 0x6f, 0, 0, 0},
		pceid:            []byte{0, 0},
		ppid:             make([]byte, 16),
		comps:            [16]byte{3, 3, 2, 2, 2, 1, 0, 3},
		pcesvn:           13,
		sgxType:          1,
		platformInstance: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		config:           []bool{true, false, true},
	}
}

type oidVal struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

func mustMarshal(t testing.TB, v any) asn1.RawValue {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: b}
}

func sgxOID(arcs ...int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, OIDSGXExtensions...), arcs...)
}

func sgxExtDER(t testing.TB, o sgxExtOpts) []byte {
	t.Helper()
	var tcb []oidVal
	for i, c := range o.comps {
		tcb = append(tcb, oidVal{sgxOID(2, i+1), mustMarshal(t, int(c))})
	}
	tcb = append(tcb, oidVal{sgxOID(2, 17), mustMarshal(t, o.pcesvn)})
	tcb = append(tcb, oidVal{sgxOID(2, 18), mustMarshal(t, o.comps[:])})
	ext := []oidVal{
		{sgxOID(1), mustMarshal(t, o.ppid)},
		{sgxOID(2), mustMarshal(t, tcb)},
		{sgxOID(3), mustMarshal(t, o.pceid)},
		{sgxOID(4), mustMarshal(t, o.fmspc)},
		{sgxOID(5), mustMarshal(t, asn1.Enumerated(o.sgxType))},
	}
	if o.platformInstance != nil {
		ext = append(ext, oidVal{sgxOID(6), mustMarshal(t, o.platformInstance)})
	}
	if o.config != nil {
		cfg := []oidVal{
			{sgxOID(7, 1), mustMarshal(t, o.config[0])},
			{sgxOID(7, 2), mustMarshal(t, o.config[1])},
			{sgxOID(7, 3), mustMarshal(t, o.config[2])},
		}
		ext = append(ext, oidVal{sgxOID(7), mustMarshal(t, cfg)})
	}
	b, err := asn1.Marshal(ext)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testPKI struct {
	root     *x509.Certificate
	leafKey  *ecdsa.PrivateKey
	chainPEM []byte
}

var testEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestPKI(t testing.TB, ext []byte) *testPKI {
	t.Helper()
	rootKey, interKey, leafKey := newKey(t), newKey(t), newKey(t)
	mk := func(serial int64, cn string, ca bool, pub, signer *ecdsa.PrivateKey, parent *x509.Certificate, exts []pkix.Extension) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sigil test"}},
			NotBefore:             testEpoch,
			NotAfter:              testEpoch.AddDate(10, 0, 0),
			BasicConstraintsValid: true,
			IsCA:                  ca,
			ExtraExtensions:       exts,
		}
		if ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &pub.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := mk(1, "Test SGX Root CA", true, rootKey, rootKey, nil, nil)
	inter := mk(2, "Test SGX PCK Platform CA", true, interKey, rootKey, root, nil)
	var exts []pkix.Extension
	if ext != nil {
		exts = []pkix.Extension{{Id: OIDSGXExtensions, Value: ext}}
	}
	leaf := mk(3, "Test SGX PCK Certificate", false, leafKey, interKey, inter, exts)
	var chain []byte
	for _, c := range []*x509.Certificate{leaf, inter, root} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	chain = append(chain, 0)
	return &testPKI{root: root, leafKey: leafKey, chainPEM: chain}
}

func rawSign(t testing.TB, k *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

type quoteOpts struct {
	version  uint16
	bodyType uint16
	body     []byte // nil: a patterned body of the right size
	qeISVSVN uint16
	auth     []byte
	mrsigner []byte // nil: Intel's TD QE signer
	qeAttr0  byte   // first QE attributes byte
	prodID   uint16 // 0: 2 (TD QE)
}

// buildQuote assembles and signs a TD quote with the test PKI.
func buildQuote(t testing.TB, pki *testPKI, o quoteOpts) []byte {
	t.Helper()
	le16 := func(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

	hdr := le16(nil, o.version)
	hdr = le16(hdr, AttKeyTypeECDSAP256)
	hdr = le32(hdr, TeeTypeTDX)
	hdr = append(hdr, 0, 0, 0, 0)
	hdr = append(hdr, 0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07)
	hdr = append(hdr, make([]byte, 20)...)

	size := bodySizeTDX10
	if o.bodyType == BodyTypeTDX15 {
		size = bodySizeTDX15
	}
	body := o.body
	if body == nil {
		body = make([]byte, size)
		for i := range body {
			body[i] = byte(i)
		}
	}
	signed := hdr
	if o.version == 5 {
		signed = le16(signed, o.bodyType)
		signed = le32(signed, uint32(len(body)))
	}
	signed = append(signed, body...)

	attKey := newKey(t)
	attPub, err := attKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	attPub = attPub[1:]

	qe := make([]byte, sgxReportSize)
	binary.LittleEndian.PutUint16(qe[256:], 2)
	if o.prodID != 0 {
		binary.LittleEndian.PutUint16(qe[256:], o.prodID)
	}
	binary.LittleEndian.PutUint16(qe[258:], o.qeISVSVN)
	copy(qe[128:], o.mrsigner)
	if o.mrsigner == nil {
		if _, err := hex.Decode(qe[128:160], []byte(IntelTDQEMRSigner)); err != nil {
			t.Fatal(err)
		}
	}
	qe[48] = o.qeAttr0
	h := sha256.Sum256(append(append([]byte{}, attPub...), o.auth...))
	copy(qe[320:], h[:])

	cert := append([]byte{}, qe...)
	cert = append(cert, rawSign(t, pki.leafKey, qe)...)
	cert = le16(cert, uint16(len(o.auth)))
	cert = append(cert, o.auth...)
	cert = le16(cert, certTypePCKChainPEM)
	cert = le32(cert, uint32(len(pki.chainPEM)))
	cert = append(cert, pki.chainPEM...)

	sig := rawSign(t, attKey, signed)
	sig = append(sig, attPub...)
	sig = le16(sig, certTypeQEReport)
	sig = le32(sig, uint32(len(cert)))
	sig = append(sig, cert...)

	out := append([]byte{}, signed...)
	out = le32(out, uint32(len(sig)))
	return append(out, sig...)
}
