// Package tpm2 parses and verifies TPM 2.0 quotes: the TPMS_ATTEST structure
// a TPM signs, the TPMT_SIGNATURE it returns, and the PCR digest the quote
// commits to. It implements only what remote attestation of a quote needs,
// with the standard library (TCG TPM 2.0 Library, Part 2: Structures).
package tpm2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Constants from the TPM 2.0 specification.
const (
	// GeneratedValue is TPM_GENERATED_VALUE, the magic of every TPMS_ATTEST.
	GeneratedValue uint32 = 0xff544347
	// STAttestQuote is TPM_ST_ATTEST_QUOTE.
	STAttestQuote uint16 = 0x8018
)

// Algorithm identifiers (TPM_ALG_ID).
const (
	AlgSHA1   uint16 = 0x0004
	AlgSHA256 uint16 = 0x000B
	AlgSHA384 uint16 = 0x000C
	AlgSHA512 uint16 = 0x000D
	AlgRSASSA uint16 = 0x0014
	AlgRSAPSS uint16 = 0x0016
	AlgECDSA  uint16 = 0x0018
)

// Errors returned by the parsers and verifiers. They are wrapped with
// context; test with errors.Is.
var (
	// ErrTruncated means the input ended before the structure did.
	ErrTruncated = errors.New("tpm2: truncated structure")
	// ErrTrailingData means bytes follow a complete structure.
	ErrTrailingData = errors.New("tpm2: trailing data after structure")
	// ErrBadMagic means TPMS_ATTEST.magic is not TPM_GENERATED_VALUE.
	ErrBadMagic = errors.New("tpm2: attestation magic is not TPM_GENERATED_VALUE")
	// ErrNotQuote means TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE.
	ErrNotQuote = errors.New("tpm2: attestation is not a quote")
	// ErrUnsupportedAlg means a signature or hash algorithm is not supported.
	ErrUnsupportedAlg = errors.New("tpm2: unsupported algorithm")
	// ErrSignature means the quote signature does not verify.
	ErrSignature = errors.New("tpm2: quote signature invalid")
	// ErrPCRDigest means the PCR values do not hash to the quote's pcrDigest.
	ErrPCRDigest = errors.New("tpm2: PCR digest mismatch")
	// ErrPCRSelection means PCR values are missing or malformed for the
	// quote's selection.
	ErrPCRSelection = errors.New("tpm2: PCR values do not match the selection")
)

// ClockInfo is TPMS_CLOCK_INFO.
type ClockInfo struct {
	Clock        uint64
	ResetCount   uint32
	RestartCount uint32
	Safe         bool
}

// PCRSelection is one TPMS_PCR_SELECTION: a hash bank and a bitmap of PCRs
// (bit i of byte j selects PCR 8*j+i).
type PCRSelection struct {
	Hash   uint16
	Select []byte
}

// PCRs returns the selected PCR indices in ascending order.
func (s PCRSelection) PCRs() []int {
	var out []int
	for j, b := range s.Select {
		for i := range 8 {
			if b&(1<<i) != 0 {
				out = append(out, 8*j+i)
			}
		}
	}
	return out
}

// Attest is a parsed TPMS_ATTEST whose attested member is a TPMS_QUOTE_INFO.
type Attest struct {
	Magic           uint32
	Type            uint16
	QualifiedSigner []byte
	// ExtraData is the caller-supplied qualifying data (the nonce).
	ExtraData       []byte
	ClockInfo       ClockInfo
	FirmwareVersion uint64
	// PCRSelect is the quote's TPML_PCR_SELECTION.
	PCRSelect []PCRSelection
	// PCRDigest is the digest of the selected PCR values.
	PCRDigest []byte
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrTruncated, n, r.off, len(r.b)-r.off)
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v, nil
}

func (r *reader) u8() (uint8, error) {
	b, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// tpm2b reads a TPM2B (u16 size + bytes) and returns a copy of the bytes.
func (r *reader) tpm2b() ([]byte, error) {
	n, err := r.u16()
	if err != nil {
		return nil, err
	}
	b, err := r.take(int(n))
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// maxPCRSelections bounds TPML_PCR_SELECTION.count (HASH_COUNT in practice
// is at most a handful; the specification's limit is 16).
const maxPCRSelections = 16

// ParseAttest parses a marshalled TPMS_ATTEST that must be a quote
// (TPM_ST_ATTEST_QUOTE) and must not be followed by other bytes.
func ParseAttest(b []byte) (*Attest, error) {
	r := &reader{b: b}
	a := &Attest{}
	var err error
	if a.Magic, err = r.u32(); err != nil {
		return nil, fmt.Errorf("tpm2: attest magic: %w", err)
	}
	if a.Magic != GeneratedValue {
		return nil, fmt.Errorf("%w (0x%08x)", ErrBadMagic, a.Magic)
	}
	if a.Type, err = r.u16(); err != nil {
		return nil, fmt.Errorf("tpm2: attest type: %w", err)
	}
	if a.Type != STAttestQuote {
		return nil, fmt.Errorf("%w (type 0x%04x)", ErrNotQuote, a.Type)
	}
	if a.QualifiedSigner, err = r.tpm2b(); err != nil {
		return nil, fmt.Errorf("tpm2: qualifiedSigner: %w", err)
	}
	if a.ExtraData, err = r.tpm2b(); err != nil {
		return nil, fmt.Errorf("tpm2: extraData: %w", err)
	}
	if a.ClockInfo.Clock, err = r.u64(); err != nil {
		return nil, fmt.Errorf("tpm2: clockInfo: %w", err)
	}
	if a.ClockInfo.ResetCount, err = r.u32(); err != nil {
		return nil, fmt.Errorf("tpm2: clockInfo: %w", err)
	}
	if a.ClockInfo.RestartCount, err = r.u32(); err != nil {
		return nil, fmt.Errorf("tpm2: clockInfo: %w", err)
	}
	safe, err := r.u8()
	if err != nil {
		return nil, fmt.Errorf("tpm2: clockInfo: %w", err)
	}
	a.ClockInfo.Safe = safe != 0
	if a.FirmwareVersion, err = r.u64(); err != nil {
		return nil, fmt.Errorf("tpm2: firmwareVersion: %w", err)
	}
	count, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("tpm2: pcrSelect: %w", err)
	}
	if count > maxPCRSelections {
		return nil, fmt.Errorf("tpm2: pcrSelect: %d selections exceed the limit of %d", count, maxPCRSelections)
	}
	for i := range count {
		var s PCRSelection
		if s.Hash, err = r.u16(); err != nil {
			return nil, fmt.Errorf("tpm2: pcrSelect[%d]: %w", i, err)
		}
		n, err := r.u8()
		if err != nil {
			return nil, fmt.Errorf("tpm2: pcrSelect[%d]: %w", i, err)
		}
		sel, err := r.take(int(n))
		if err != nil {
			return nil, fmt.Errorf("tpm2: pcrSelect[%d]: %w", i, err)
		}
		s.Select = append([]byte(nil), sel...)
		a.PCRSelect = append(a.PCRSelect, s)
	}
	if a.PCRDigest, err = r.tpm2b(); err != nil {
		return nil, fmt.Errorf("tpm2: pcrDigest: %w", err)
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTrailingData, len(b)-r.off)
	}
	return a, nil
}

// Signature is a parsed TPMT_SIGNATURE (or a raw RSASSA value, see
// RawRSASSA).
type Signature struct {
	// Alg is the signature scheme: AlgRSASSA, AlgRSAPSS or AlgECDSA.
	Alg uint16
	// Hash is the digest algorithm the scheme used.
	Hash uint16
	// RSA is the RSA signature value (RSASSA, RSAPSS).
	RSA []byte
	// R and S are the ECDSA signature values (big-endian).
	R, S []byte
}

// ParseSignature parses a marshalled TPMT_SIGNATURE with scheme RSASSA,
// RSAPSS or ECDSA. Trailing bytes are an error.
func ParseSignature(b []byte) (*Signature, error) {
	r := &reader{b: b}
	s := &Signature{}
	var err error
	if s.Alg, err = r.u16(); err != nil {
		return nil, fmt.Errorf("tpm2: signature sigAlg: %w", err)
	}
	if s.Hash, err = r.u16(); err != nil {
		return nil, fmt.Errorf("tpm2: signature hash: %w", err)
	}
	switch s.Alg {
	case AlgRSASSA, AlgRSAPSS:
		if s.RSA, err = r.tpm2b(); err != nil {
			return nil, fmt.Errorf("tpm2: RSA signature: %w", err)
		}
	case AlgECDSA:
		if s.R, err = r.tpm2b(); err != nil {
			return nil, fmt.Errorf("tpm2: ECDSA signatureR: %w", err)
		}
		if s.S, err = r.tpm2b(); err != nil {
			return nil, fmt.Errorf("tpm2: ECDSA signatureS: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: signature scheme 0x%04x", ErrUnsupportedAlg, s.Alg)
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes", ErrTrailingData, len(b)-r.off)
	}
	return s, nil
}

// RawRSASSA wraps a bare RSASSA-PKCS1-v1_5/SHA-256 signature value, as the
// Azure vTPM attester sends it, as a Signature.
func RawRSASSA(sig []byte) *Signature {
	return &Signature{Alg: AlgRSASSA, Hash: AlgSHA256, RSA: append([]byte(nil), sig...)}
}
