package pcs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// TCB status strings as Intel PCS writes them (and as Trustee's tcb_status
// claim reports them).
const (
	StatusUpToDate                          = "UpToDate"
	StatusSWHardeningNeeded                 = "SWHardeningNeeded"
	StatusConfigurationNeeded               = "ConfigurationNeeded"
	StatusConfigurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
	StatusOutOfDate                         = "OutOfDate"
	StatusOutOfDateConfigurationNeeded      = "OutOfDateConfigurationNeeded"
	StatusRevoked                           = "Revoked"
	StatusUnknown                           = "Unknown"
)

// knownStatus lists the statuses a collateral document may carry.
var knownStatus = map[string]bool{
	StatusUpToDate: true, StatusSWHardeningNeeded: true, StatusConfigurationNeeded: true,
	StatusConfigurationAndSWHardeningNeeded: true, StatusOutOfDate: true,
	StatusOutOfDateConfigurationNeeded: true, StatusRevoked: true,
}

// TCBComponent is one entry of sgxtcbcomponents / tdxtcbcomponents.
type TCBComponent struct {
	SVN      int    `json:"svn"`
	Category string `json:"category,omitempty"`
	Type     string `json:"type,omitempty"`
}

// TCB is the "tcb" object of a TCB level. Platform levels (tcbInfo.tcbLevels)
// use SGXComponents, PCESVN and TDXComponents; TDX module and enclave identity
// levels use ISVSVN.
type TCB struct {
	SGXComponents []TCBComponent `json:"sgxtcbcomponents,omitempty"`
	PCESVN        *int           `json:"pcesvn,omitempty"`
	TDXComponents []TCBComponent `json:"tdxtcbcomponents,omitempty"`
	ISVSVN        *int           `json:"isvsvn,omitempty"`
}

// TCBLevel is one entry of a tcbLevels array.
type TCBLevel struct {
	TCB         TCB       `json:"tcb"`
	TCBDate     time.Time `json:"tcbDate"`
	TCBStatus   string    `json:"tcbStatus"`
	AdvisoryIDs []string  `json:"advisoryIDs,omitempty"`
}

// TDXModule is tcbInfo.tdxModule (TCB Info v2 and v3).
type TDXModule struct {
	MRSigner       HexBytes `json:"mrsigner"`
	Attributes     HexBytes `json:"attributes"`
	AttributesMask HexBytes `json:"attributesMask"`
}

// TDXModuleIdentity is one entry of tcbInfo.tdxModuleIdentities (TCB Info v3).
type TDXModuleIdentity struct {
	ID             string     `json:"id"`
	MRSigner       HexBytes   `json:"mrsigner"`
	Attributes     HexBytes   `json:"attributes"`
	AttributesMask HexBytes   `json:"attributesMask"`
	TCBLevels      []TCBLevel `json:"tcbLevels"`
}

// TCBInfo is the signed "tcbInfo" object of a PCS TCB Info response.
type TCBInfo struct {
	ID                      string              `json:"id"`
	Version                 int                 `json:"version"`
	IssueDate               time.Time           `json:"issueDate"`
	NextUpdate              time.Time           `json:"nextUpdate"`
	FMSPC                   HexBytes            `json:"fmspc"`
	PCEID                   HexBytes            `json:"pceId"`
	TCBType                 int                 `json:"tcbType"`
	TCBEvaluationDataNumber int                 `json:"tcbEvaluationDataNumber"`
	TDXModule               *TDXModule          `json:"tdxModule,omitempty"`
	TDXModuleIdentities     []TDXModuleIdentity `json:"tdxModuleIdentities,omitempty"`
	TCBLevels               []TCBLevel          `json:"tcbLevels"`
}

// EnclaveIdentity is the signed "enclaveIdentity" object of a PCS QE
// identity response.
type EnclaveIdentity struct {
	ID                      string     `json:"id"`
	Version                 int        `json:"version"`
	IssueDate               time.Time  `json:"issueDate"`
	NextUpdate              time.Time  `json:"nextUpdate"`
	TCBEvaluationDataNumber int        `json:"tcbEvaluationDataNumber"`
	MiscSelect              HexBytes   `json:"miscselect"`
	MiscSelectMask          HexBytes   `json:"miscselectMask"`
	Attributes              HexBytes   `json:"attributes"`
	AttributesMask          HexBytes   `json:"attributesMask"`
	MRSigner                HexBytes   `json:"mrsigner"`
	ISVProdID               int        `json:"isvprodid"`
	TCBLevels               []TCBLevel `json:"tcbLevels"`
}

// HexBytes is a byte string written as hex (either case) in JSON.
type HexBytes []byte

// UnmarshalJSON decodes a hex string.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// MarshalJSON encodes as upper-case hex, the way PCS writes it.
func (h HexBytes) MarshalJSON() ([]byte, error) {
	return json.Marshal(strings.ToUpper(hex.EncodeToString(h)))
}

// SignedTCBInfo is a parsed TCB Info response: the exact signed bytes, the
// signature and the decoded object.
type SignedTCBInfo struct {
	// Raw is the exact byte range of the "tcbInfo" JSON value in the
	// response (what Intel signed).
	Raw []byte
	// Signature is the raw 64-byte r‖s ECDSA-P256 signature.
	Signature []byte
	TCBInfo   TCBInfo
}

// SignedEnclaveIdentity is a parsed QE identity response.
type SignedEnclaveIdentity struct {
	// Raw is the exact byte range of the "enclaveIdentity" JSON value.
	Raw       []byte
	Signature []byte
	Identity  EnclaveIdentity
}

type envelope struct {
	TCBInfo         json.RawMessage `json:"tcbInfo"`
	EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
	Signature       string          `json:"signature"`
}

// ParseTCBInfo parses a PCS TCB Info response body
// ({"tcbInfo":{…},"signature":"<hex>"}) and checks its structure. It does not
// verify the signature (see VerifySignature).
func ParseTCBInfo(body []byte) (*SignedTCBInfo, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: tcbInfo response: %v", ErrInvalidCollateral, err)
	}
	if len(env.TCBInfo) == 0 {
		return nil, fmt.Errorf("%w: tcbInfo member missing", ErrInvalidCollateral)
	}
	sig, err := decodeSignature(env.Signature)
	if err != nil {
		return nil, err
	}
	out := &SignedTCBInfo{Raw: env.TCBInfo, Signature: sig}
	if err := json.Unmarshal(env.TCBInfo, &out.TCBInfo); err != nil {
		return nil, fmt.Errorf("%w: tcbInfo: %v", ErrInvalidCollateral, err)
	}
	if err := out.TCBInfo.validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseEnclaveIdentity parses a PCS QE identity response body
// ({"enclaveIdentity":{…},"signature":"<hex>"}) and checks its structure.
func ParseEnclaveIdentity(body []byte) (*SignedEnclaveIdentity, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: enclaveIdentity response: %v", ErrInvalidCollateral, err)
	}
	if len(env.EnclaveIdentity) == 0 {
		return nil, fmt.Errorf("%w: enclaveIdentity member missing", ErrInvalidCollateral)
	}
	sig, err := decodeSignature(env.Signature)
	if err != nil {
		return nil, err
	}
	out := &SignedEnclaveIdentity{Raw: env.EnclaveIdentity, Signature: sig}
	if err := json.Unmarshal(env.EnclaveIdentity, &out.Identity); err != nil {
		return nil, fmt.Errorf("%w: enclaveIdentity: %v", ErrInvalidCollateral, err)
	}
	if err := out.Identity.validate(); err != nil {
		return nil, err
	}
	return out, nil
}

func decodeSignature(s string) ([]byte, error) {
	sig, err := hex.DecodeString(s)
	if err != nil || len(sig) != 64 {
		return nil, fmt.Errorf("%w: signature must be 64 bytes of hex", ErrInvalidCollateral)
	}
	return sig, nil
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCollateral, fmt.Sprintf(format, a...))
}

func (t *TCBInfo) validate() error {
	if t.ID != "TDX" {
		return invalid("tcbInfo id %q, want TDX", t.ID)
	}
	if t.Version != 2 && t.Version != 3 {
		return invalid("unsupported tcbInfo version %d", t.Version)
	}
	if t.TCBType != 0 {
		return invalid("unsupported tcbType %d", t.TCBType)
	}
	if len(t.FMSPC) != 6 || len(t.PCEID) != 2 {
		return invalid("fmspc/pceId have wrong length")
	}
	if t.IssueDate.IsZero() || t.NextUpdate.IsZero() || !t.NextUpdate.After(t.IssueDate) {
		return invalid("bad issueDate/nextUpdate")
	}
	if len(t.TCBLevels) == 0 {
		return invalid("no tcbLevels")
	}
	for i, l := range t.TCBLevels {
		if len(l.TCB.SGXComponents) != 16 || len(l.TCB.TDXComponents) != 16 || l.TCB.PCESVN == nil {
			return invalid("tcbLevels[%d]: need 16 sgxtcbcomponents, 16 tdxtcbcomponents and pcesvn", i)
		}
		if err := l.validate(); err != nil {
			return fmt.Errorf("tcbLevels[%d]: %w", i, err)
		}
	}
	if t.TDXModule != nil {
		if err := checkModule(t.TDXModule.MRSigner, t.TDXModule.Attributes, t.TDXModule.AttributesMask); err != nil {
			return err
		}
	}
	for i, m := range t.TDXModuleIdentities {
		if err := checkModule(m.MRSigner, m.Attributes, m.AttributesMask); err != nil {
			return fmt.Errorf("tdxModuleIdentities[%d]: %w", i, err)
		}
		if len(m.TCBLevels) == 0 {
			return invalid("tdxModuleIdentities[%d]: no tcbLevels", i)
		}
		for j, l := range m.TCBLevels {
			if l.TCB.ISVSVN == nil {
				return invalid("tdxModuleIdentities[%d].tcbLevels[%d]: isvsvn missing", i, j)
			}
			if err := l.validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkModule(mrsigner, attr, mask []byte) error {
	if len(mrsigner) != 48 || len(attr) != 8 || len(mask) != 8 {
		return invalid("tdxModule: mrsigner must be 48 bytes, attributes/mask 8")
	}
	return nil
}

func (l *TCBLevel) validate() error {
	if !knownStatus[l.TCBStatus] {
		return invalid("unknown tcbStatus %q", l.TCBStatus)
	}
	for _, c := range append(append([]TCBComponent(nil), l.TCB.SGXComponents...), l.TCB.TDXComponents...) {
		if c.SVN < 0 || c.SVN > 255 {
			return invalid("component svn %d out of range", c.SVN)
		}
	}
	if l.TCB.PCESVN != nil && (*l.TCB.PCESVN < 0 || *l.TCB.PCESVN > 0xffff) {
		return invalid("pcesvn out of range")
	}
	if l.TCB.ISVSVN != nil && (*l.TCB.ISVSVN < 0 || *l.TCB.ISVSVN > 0xffff) {
		return invalid("isvsvn out of range")
	}
	return nil
}

func (e *EnclaveIdentity) validate() error {
	if e.ID != "TD_QE" {
		return invalid("enclaveIdentity id %q, want TD_QE", e.ID)
	}
	if e.Version != 2 {
		return invalid("unsupported enclaveIdentity version %d", e.Version)
	}
	if len(e.MiscSelect) != 4 || len(e.MiscSelectMask) != 4 || len(e.Attributes) != 16 ||
		len(e.AttributesMask) != 16 || len(e.MRSigner) != 32 {
		return invalid("enclaveIdentity field lengths")
	}
	if e.IssueDate.IsZero() || e.NextUpdate.IsZero() || !e.NextUpdate.After(e.IssueDate) {
		return invalid("bad issueDate/nextUpdate")
	}
	if len(e.TCBLevels) == 0 {
		return invalid("no tcbLevels")
	}
	for i, l := range e.TCBLevels {
		if l.TCB.ISVSVN == nil {
			return invalid("tcbLevels[%d]: isvsvn missing", i)
		}
		if err := l.validate(); err != nil {
			return err
		}
	}
	return nil
}

// VerifySignature checks a raw r‖s ECDSA-P256/SHA-256 signature over signed
// with the public key of cert. If the bytes as given do not verify and they
// contain insignificant whitespace (collateral re-indented by a tool), the
// compact form is tried too: compaction never changes the JSON content.
func VerifySignature(cert *x509.Certificate, signed, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signing key is not ECDSA", ErrSignature)
	}
	if len(sig) != 64 {
		return fmt.Errorf("%w: signature length %d", ErrSignature, len(sig))
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	d := sha256.Sum256(signed)
	if ecdsa.Verify(pub, d[:], r, s) {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, signed) == nil && !bytes.Equal(buf.Bytes(), signed) {
		d = sha256.Sum256(buf.Bytes())
		if ecdsa.Verify(pub, d[:], r, s) {
			return nil
		}
	}
	return fmt.Errorf("%w: collateral signature does not verify", ErrSignature)
}

// parseChain decodes a PEM certificate chain (leaf first).
func parseChain(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer chain: %v", ErrSigningChain, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: issuer chain has no certificates", ErrSigningChain)
	}
	return certs, nil
}

// verifyChain checks that chain[0] chains to one of roots at time t and
// returns the leaf.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, t time.Time) (*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   t,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ie x509.CertificateInvalidError
		if errors.As(err, &ie) && ie.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %w (certificate clock %s)", ErrSigningChain, err, t.UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("%w: %w", ErrSigningChain, err)
	}
	return chain[0], nil
}
