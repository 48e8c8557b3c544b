package azvtpm

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
)

// HCL report layout (Azure confidential VM "host compatibility layer").
const (
	hclHeaderSize       = 0x20
	hclHWReportOffset   = 0x20
	hclHWReportSize     = 0x4A0 // the SNP report size; a TDREPORT uses the first 1024 bytes
	hclIGVMOffset       = 0x4C0
	hclIGVMHeaderSize   = 20
	hclVarDataOffset    = 0x4D4
	hclMagic            = "HCLA"
	snpReportSize       = 1184
	tdReportSize        = 1024
	akKeyID             = "HCLAkPub"
	maxVarDataSize      = 1 << 16
	userDataDefaultSize = 64
)

// Hardware report types in the IGVM request data.
const (
	// ReportTypeSNP marks an embedded AMD SEV-SNP attestation report.
	ReportTypeSNP uint32 = 2
	// ReportTypeTDX marks an embedded Intel TDX TDREPORT.
	ReportTypeTDX uint32 = 4
)

// HCLReport is a parsed HCL attestation report.
type HCLReport struct {
	// Version, ReportSize, RequestType and Status come from the 32-byte header.
	Version     uint32
	ReportSize  uint32
	RequestType uint32
	Status      uint32
	// ReportType is the IGVM report type: ReportTypeSNP or ReportTypeTDX.
	ReportType uint32
	// HashType is the IGVM hash type of the var data (1 = SHA-256).
	HashType uint32
	// HardwareReport is the SNP report (1184 bytes) or the TDREPORT (1024
	// bytes).
	HardwareReport []byte
	// VarData is the runtime variable data (JSON) whose SHA-256 the hardware
	// report carries in report_data[0:32].
	VarData []byte
}

// ParseHCLReport parses an HCL report. Only the framing is checked here; the
// var-data JSON is decoded on demand (AKPublic, UserData) so that a damaged
// key is reported as such.
func ParseHCLReport(b []byte) (*HCLReport, error) {
	if len(b) < hclVarDataOffset {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrHCLReport, len(b), hclVarDataOffset)
	}
	if string(b[:4]) != hclMagic {
		return nil, fmt.Errorf("%w: signature %q is not %q", ErrHCLReport, b[:4], hclMagic)
	}
	le := binary.LittleEndian
	h := &HCLReport{
		Version:     le.Uint32(b[4:]),
		ReportSize:  le.Uint32(b[8:]),
		RequestType: le.Uint32(b[12:]),
		Status:      le.Uint32(b[16:]),
	}
	igvm := b[hclIGVMOffset:hclVarDataOffset]
	dataSize := le.Uint32(igvm[0:])
	h.ReportType = le.Uint32(igvm[8:])
	h.HashType = le.Uint32(igvm[12:])
	varSize := le.Uint32(igvm[16:])
	if varSize > maxVarDataSize || uint64(varSize) > uint64(len(b)-hclVarDataOffset) {
		return nil, fmt.Errorf("%w: var data size %d exceeds the report", ErrHCLReport, varSize)
	}
	if uint64(dataSize) != uint64(varSize)+hclIGVMHeaderSize {
		return nil, fmt.Errorf("%w: IGVM data size %d does not match var data size %d", ErrHCLReport, dataSize, varSize)
	}
	switch h.ReportType {
	case ReportTypeSNP:
		h.HardwareReport = b[hclHWReportOffset : hclHWReportOffset+snpReportSize]
	case ReportTypeTDX:
		h.HardwareReport = b[hclHWReportOffset : hclHWReportOffset+tdReportSize]
	default:
		return nil, fmt.Errorf("%w: unknown hardware report type %d", ErrHCLReport, h.ReportType)
	}
	h.VarData = b[hclVarDataOffset : hclVarDataOffset+int(varSize)]
	return h, nil
}

// VarDataSHA256 is the digest the hardware report binds in report_data[0:32].
func (h *HCLReport) VarDataSHA256() [32]byte { return sha256.Sum256(h.VarData) }

type varData struct {
	Keys []struct {
		Kid string `json:"kid"`
		Kty string `json:"kty"`
		N   string `json:"n"`
		E   string `json:"e"`
	} `json:"keys"`
	UserData *string `json:"user-data"`
}

func (h *HCLReport) varData() (*varData, error) {
	var v varData
	if err := json.Unmarshal(h.VarData, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// AKPublic returns the attestation key (the "HCLAkPub" RSA JWK of the var
// data) that signs the vTPM quotes.
func (h *HCLReport) AKPublic() (*rsa.PublicKey, error) {
	v, err := h.varData()
	if err != nil {
		return nil, fmt.Errorf("%w: var data: %v", ErrAKUnusable, err)
	}
	for _, k := range v.Keys {
		if k.Kid != akKeyID {
			continue
		}
		if k.Kty != "RSA" {
			return nil, fmt.Errorf("%w: key type %q", ErrAKUnusable, k.Kty)
		}
		n, err := b64url(k.N)
		if err != nil || len(n) == 0 {
			return nil, fmt.Errorf("%w: modulus: %v", ErrAKUnusable, err)
		}
		e, err := b64url(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("%w: exponent", ErrAKUnusable)
		}
		exp := new(big.Int).SetBytes(e)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("%w: weak or invalid RSA key (%d bits, e=%d)", ErrAKUnusable, pub.N.BitLen(), pub.E)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("%w: no %s key in var data", ErrAKUnusable, akKeyID)
}

// UserData returns the decoded var-data "user-data" member (hex, upper case
// as Azure writes it; decoded case-insensitively). It is nil when absent.
func (h *HCLReport) UserData() ([]byte, error) {
	v, err := h.varData()
	if err != nil {
		return nil, fmt.Errorf("%w: var data: %v", ErrHCLReport, err)
	}
	if v.UserData == nil {
		return nil, nil
	}
	b, err := hex.DecodeString(*v.UserData)
	if err != nil {
		return nil, fmt.Errorf("%w: user-data: %v", ErrHCLReport, err)
	}
	return b, nil
}

// b64url decodes base64url with or without padding.
func b64url(s string) ([]byte, error) {
	s = string(bytes.TrimRight([]byte(s), "="))
	return base64.RawURLEncoding.DecodeString(s)
}
