package tdx

import (
	"encoding/binary"
	"fmt"
)

// Sizes of the fixed parts of an Intel DCAP quote (Intel TDX DCAP Quoting
// Library API, "Quote Format").
const (
	headerSize       = 48
	v5BodyHeaderSize = 6 // body type u16 + body size u32
	bodySizeTDX10    = 584
	bodySizeTDX15    = 648
	sgxReportSize    = 384
	ecdsaSigSize     = 64
	ecdsaKeySize     = 64
)

// Quote header values this verifier accepts.
const (
	// AttKeyTypeECDSAP256 is the attestation key type of an ECDSA-256 with
	// P-256 curve key.
	AttKeyTypeECDSAP256 = 2
	// TeeTypeTDX is the header tee_type of a TD quote.
	TeeTypeTDX = 0x81
)

// Body types of a version 5 quote.
const (
	BodyTypeSGX   = 1
	BodyTypeTDX10 = 2
	BodyTypeTDX15 = 3
)

// Certification data types.
const (
	certTypePCKChainPEM = 5
	certTypeQEReport    = 6
)

// Header is the 48-byte quote header.
type Header struct {
	Version    uint16
	AttKeyType uint16
	TeeType    uint32
	// Reserved is QE SVN ‖ PCE SVN in SGX quotes; reserved in TD quotes.
	Reserved [4]byte
	VendorID [16]byte
	UserData [20]byte
}

// Body is a TD report body (TDX 1.0 layout, plus the TDX 1.5 fields when
// the quote carries a version 5 type 3 body).
type Body struct {
	TeeTCBSVN      [16]byte
	MRSeam         [48]byte
	MRSignerSeam   [48]byte
	SeamAttributes [8]byte
	TDAttributes   [8]byte
	XFAM           [8]byte
	MRTD           [48]byte
	MRConfigID     [48]byte
	MROwner        [48]byte
	MROwnerConfig  [48]byte
	RTMR           [4][48]byte
	ReportData     [64]byte

	// TDX15 is true when TeeTCBSVN2 and MRServiceTD are present.
	TDX15       bool
	TeeTCBSVN2  [16]byte
	MRServiceTD [48]byte
}

// EnclaveReport is an SGX report body (the Quoting Enclave's report).
type EnclaveReport struct {
	CPUSVN     [16]byte
	MiscSelect [4]byte
	Attributes [16]byte
	MREnclave  [32]byte
	MRSigner   [32]byte
	ISVProdID  uint16
	ISVSVN     uint16
	ReportData [64]byte
}

// Quote is a parsed Intel DCAP TD quote (version 4 or 5).
type Quote struct {
	Header Header
	// BodyType and BodySize are the version 5 body descriptor (0 for v4).
	BodyType uint16
	BodySize uint32
	Body     Body

	// Signature is the raw r‖s ECDSA-P256 signature over SignedData.
	Signature [ecdsaSigSize]byte
	// AttestationKey is the raw x‖y P-256 attestation public key.
	AttestationKey [ecdsaKeySize]byte

	// QEReportRaw is the QE report as signed by the PCK key.
	QEReportRaw [sgxReportSize]byte
	// QEReport is QEReportRaw decoded.
	QEReport EnclaveReport
	// QEReportSignature is the raw r‖s signature of QEReportRaw.
	QEReportSignature [ecdsaSigSize]byte
	// QEAuthData is the QE authentication data.
	QEAuthData []byte
	// PCKChainPEM is the type 5 certification data: the PEM PCK chain,
	// leaf first.
	PCKChainPEM []byte

	// SignedData is header ‖ [v5 body descriptor] ‖ body: the bytes the
	// attestation key signs. It aliases the parsed buffer.
	SignedData []byte
	// Size is the number of meaningful bytes of the parsed buffer; the rest
	// was zero padding.
	Size int
}

// reader is a bounds-checked cursor over a byte slice.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: %s: need %d bytes at offset %d, have %d", ErrMalformedQuote, what, n, r.off, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *reader) u16(what string) uint16 {
	s := r.take(2, what)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(s)
}

func (r *reader) u32(what string) uint32 {
	s := r.take(4, what)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

func (r *reader) copy(dst []byte, what string) {
	if s := r.take(len(dst), what); s != nil {
		copy(dst, s)
	}
}

// ParseQuote parses a DCAP TD quote, version 4 (TDX 1.0 body) or version 5
// (body type 2, TDX 1.0, or type 3, TDX 1.5), with an ECDSA-P256 attestation
// key and certification data type 6 (QE report) wrapping a type 5 PEM PCK
// chain. Every length is taken from the quote itself; bytes after the
// declared signature data must be zero (padding) and are ignored.
//
// ParseQuote only decodes; it checks no signature. The returned Quote
// aliases b.
func ParseQuote(b []byte) (*Quote, error) {
	r := &reader{b: b}
	q := &Quote{}
	h := &q.Header
	h.Version = r.u16("header version")
	h.AttKeyType = r.u16("header att_key_type")
	h.TeeType = r.u32("header tee_type")
	r.copy(h.Reserved[:], "header reserved")
	r.copy(h.VendorID[:], "header vendor_id")
	r.copy(h.UserData[:], "header user_data")
	if r.err != nil {
		return nil, r.err
	}
	if h.AttKeyType != AttKeyTypeECDSAP256 {
		return nil, fmt.Errorf("%w: attestation key type %d (want %d, ECDSA-P256)", ErrUnsupportedQuote, h.AttKeyType, AttKeyTypeECDSAP256)
	}
	if h.TeeType != TeeTypeTDX {
		return nil, fmt.Errorf("%w: tee_type %#x is not TDX (%#x)", ErrUnsupportedQuote, h.TeeType, TeeTypeTDX)
	}

	var bodyLen int
	switch h.Version {
	case 4:
		bodyLen = bodySizeTDX10
	case 5:
		q.BodyType = r.u16("body type")
		q.BodySize = r.u32("body size")
		if r.err != nil {
			return nil, r.err
		}
		switch {
		case q.BodyType == BodyTypeTDX10 && q.BodySize == bodySizeTDX10:
		case q.BodyType == BodyTypeTDX15 && q.BodySize == bodySizeTDX15:
			q.Body.TDX15 = true
		default:
			return nil, fmt.Errorf("%w: v5 body type %d with size %d", ErrUnsupportedQuote, q.BodyType, q.BodySize)
		}
		bodyLen = int(q.BodySize)
	default:
		return nil, fmt.Errorf("%w: quote version %d", ErrUnsupportedQuote, h.Version)
	}
	body := r.take(bodyLen, "report body")
	if r.err != nil {
		return nil, r.err
	}
	q.SignedData = b[:r.off:r.off]
	parseBody(body, &q.Body)

	sigLen := r.u32("signature data length")
	sig := r.take(int(sigLen), "signature data")
	if r.err != nil {
		return nil, r.err
	}
	if err := parseSignatureData(sig, q); err != nil {
		return nil, err
	}
	q.Size = r.off
	for i, c := range b[r.off:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: non-zero byte at offset %d after the signature data", ErrMalformedQuote, r.off+i)
		}
	}
	return q, nil
}

func parseBody(b []byte, body *Body) {
	r := &reader{b: b}
	r.copy(body.TeeTCBSVN[:], "tee_tcb_svn")
	r.copy(body.MRSeam[:], "mr_seam")
	r.copy(body.MRSignerSeam[:], "mrsigner_seam")
	r.copy(body.SeamAttributes[:], "seam_attributes")
	r.copy(body.TDAttributes[:], "td_attributes")
	r.copy(body.XFAM[:], "xfam")
	r.copy(body.MRTD[:], "mr_td")
	r.copy(body.MRConfigID[:], "mr_config_id")
	r.copy(body.MROwner[:], "mr_owner")
	r.copy(body.MROwnerConfig[:], "mr_owner_config")
	for i := range body.RTMR {
		r.copy(body.RTMR[i][:], "rtmr")
	}
	r.copy(body.ReportData[:], "report_data")
	if body.TDX15 {
		r.copy(body.TeeTCBSVN2[:], "tee_tcb_svn2")
		r.copy(body.MRServiceTD[:], "mr_servicetd")
	}
}

func parseEnclaveReport(b []byte, e *EnclaveReport) {
	r := &reader{b: b}
	r.copy(e.CPUSVN[:], "cpu_svn")
	r.copy(e.MiscSelect[:], "misc_select")
	r.take(28, "reserved")
	r.copy(e.Attributes[:], "attributes")
	r.copy(e.MREnclave[:], "mr_enclave")
	r.take(32, "reserved")
	r.copy(e.MRSigner[:], "mr_signer")
	r.take(96, "reserved")
	e.ISVProdID = r.u16("isv_prod_id")
	e.ISVSVN = r.u16("isv_svn")
	r.take(60, "reserved")
	r.copy(e.ReportData[:], "report_data")
}

// parseSignatureData decodes the quote signature data: signature,
// attestation key and certification data type 6 (QE report certification
// data), which itself nests the type 5 PEM PCK chain.
func parseSignatureData(b []byte, q *Quote) error {
	r := &reader{b: b}
	r.copy(q.Signature[:], "quote signature")
	r.copy(q.AttestationKey[:], "attestation key")
	certType := r.u16("certification data type")
	certSize := r.u32("certification data size")
	if r.err != nil {
		return r.err
	}
	if certType != certTypeQEReport {
		return fmt.Errorf("%w: certification data type %d (want %d, QE report)", ErrUnsupportedQuote, certType, certTypeQEReport)
	}
	cert := r.take(int(certSize), "certification data")
	if r.err != nil {
		return r.err
	}
	if r.off != len(b) {
		return fmt.Errorf("%w: %d bytes of signature data after the certification data", ErrMalformedQuote, len(b)-r.off)
	}

	c := &reader{b: cert}
	c.copy(q.QEReportRaw[:], "QE report")
	c.copy(q.QEReportSignature[:], "QE report signature")
	authLen := c.u16("QE auth data length")
	q.QEAuthData = c.take(int(authLen), "QE auth data")
	innerType := c.u16("PCK certification data type")
	innerSize := c.u32("PCK certification data size")
	if c.err != nil {
		return c.err
	}
	if innerType != certTypePCKChainPEM {
		return fmt.Errorf("%w: QE certification data type %d (want %d, PEM PCK chain)", ErrUnsupportedQuote, innerType, certTypePCKChainPEM)
	}
	q.PCKChainPEM = c.take(int(innerSize), "PCK certificate chain")
	if c.err != nil {
		return c.err
	}
	if c.off != len(cert) {
		return fmt.Errorf("%w: %d bytes after the PCK certificate chain", ErrMalformedQuote, len(cert)-c.off)
	}
	parseEnclaveReport(q.QEReportRaw[:], &q.QEReport)
	return nil
}
