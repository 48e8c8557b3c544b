package nvidia

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// SPDM constants of the GET_MEASUREMENTS exchange NVIDIA devices answer
// (DMTF DSP0274 1.1.1).
const (
	// SPDMVersion11 is the only SPDM version accepted (0x11 = 1.1).
	SPDMVersion11 = 0x11
	// CodeGetMeasurements is the request code of GET_MEASUREMENTS.
	CodeGetMeasurements = 0xE0
	// CodeMeasurements is the response code of MEASUREMENTS.
	CodeMeasurements = 0x60
	// RequestSize is the size of a GET_MEASUREMENTS request with a nonce.
	RequestSize = 37
	// NonceSize is the size of the SPDM requester and responder nonces.
	NonceSize = 32
	// SignatureSize is the size of the raw ECDSA P-384 r‖s signature.
	SignatureSize = 96
	// MeasurementSpecDMTF is the only measurement specification accepted.
	MeasurementSpecDMTF = 0x01

	responseHeaderSize = 8 // version, code, param1, param2, blocks, u24 length
	blockHeaderSize    = 4 // index, spec, u16 size
	dmtfHeaderSize     = 3 // value type, u16 value size
	opaqueHeaderSize   = 4 // u16 type, u16 size
)

// Request is the parsed 37-byte SPDM GET_MEASUREMENTS request.
type Request struct {
	Version byte
	Code    byte
	Param1  byte
	Param2  byte
	// Nonce is the requester (verifier) nonce: the freshness value.
	Nonce  [NonceSize]byte
	SlotID byte
}

// MeasurementBlock is one SPDM measurement block in DMTF format.
type MeasurementBlock struct {
	// Index is the 1-based SPDM measurement index.
	Index byte
	// Spec is the measurement specification (always MeasurementSpecDMTF).
	Spec byte
	// ValueType is the DMTF measurement value type.
	ValueType byte
	// Value is the measurement (a SHA-384 digest on NVIDIA devices).
	Value []byte
}

// OpaqueField is one NVIDIA TLV of the opaque data.
type OpaqueField struct {
	Type uint16
	Data []byte
}

// Response is the parsed SPDM MEASUREMENTS response.
type Response struct {
	Version byte
	Code    byte
	Param1  byte
	Param2  byte
	// Blocks are the measurement blocks in record order.
	Blocks []MeasurementBlock
	// ResponderNonce is the device-generated nonce (not a freshness value
	// for the verifier).
	ResponderNonce [NonceSize]byte
	// Opaque is the raw opaque data and Fields its TLVs in order.
	Opaque []byte
	Fields []OpaqueField
	// Signature is the raw r‖s ECDSA P-384 signature.
	Signature []byte
}

// Report is a parsed NVIDIA attestation report: SPDM request ‖ response.
type Report struct {
	Request  Request
	Response Response
	// Raw is the whole input, including any trailing bytes.
	Raw []byte
	// SignedLen is the length of the signed prefix of Raw: the request and
	// the response up to (excluding) the signature.
	SignedLen int
	// Trailing is the number of bytes after the signature (ignored).
	Trailing int
}

// SignedBytes returns the bytes the report signature covers.
func (r *Report) SignedBytes() []byte { return r.Raw[:r.SignedLen] }

// Field returns the data of the opaque field of type t.
func (r *Report) Field(t uint16) ([]byte, bool) {
	for _, f := range r.Response.Fields {
		if f.Type == t {
			return f.Data, true
		}
	}
	return nil, false
}

// Measurements returns the measurement values keyed by 1-based SPDM index.
func (r *Report) Measurements() map[int][]byte {
	m := make(map[int][]byte, len(r.Response.Blocks))
	for _, b := range r.Response.Blocks {
		m[int(b.Index)] = b.Value
	}
	return m
}

// DecodeReport decodes the "evidence" string of a device entry: hex first
// (old Trustee and nvtrust samples), then standard base64 (NVAT).
func DecodeReport(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: evidence is neither hex nor standard base64", ErrMalformedReport)
	}
	return b, nil
}

// ParseReport parses an SPDM GET_MEASUREMENTS request ‖ MEASUREMENTS
// response by structure. Bytes after the signature are tolerated and
// reported in Trailing; the signed range comes from the parsed lengths.
// Opaque TLVs must fill the opaque data exactly; a duplicated TLV type is
// rejected (it would make claims ambiguous). Unknown TLV types are kept.
func ParseReport(raw []byte) (*Report, error) {
	if len(raw) < RequestSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte request", ErrMalformedReport, len(raw), RequestSize)
	}
	rep := &Report{Raw: raw}
	q := &rep.Request
	q.Version, q.Code, q.Param1, q.Param2 = raw[0], raw[1], raw[2], raw[3]
	copy(q.Nonce[:], raw[4:4+NonceSize])
	q.SlotID = raw[36]
	if q.Version != SPDMVersion11 {
		return nil, fmt.Errorf("%w: request SPDM version %#02x, want %#02x", ErrMalformedReport, q.Version, SPDMVersion11)
	}
	if q.Code != CodeGetMeasurements {
		return nil, fmt.Errorf("%w: request code %#02x, want GET_MEASUREMENTS %#02x", ErrMalformedReport, q.Code, CodeGetMeasurements)
	}

	b := raw[RequestSize:]
	if len(b) < responseHeaderSize {
		return nil, fmt.Errorf("%w: response header truncated", ErrMalformedReport)
	}
	p := &rep.Response
	p.Version, p.Code, p.Param1, p.Param2 = b[0], b[1], b[2], b[3]
	if p.Version != SPDMVersion11 {
		return nil, fmt.Errorf("%w: response SPDM version %#02x, want %#02x", ErrMalformedReport, p.Version, SPDMVersion11)
	}
	if p.Code != CodeMeasurements {
		return nil, fmt.Errorf("%w: response code %#02x, want MEASUREMENTS %#02x", ErrMalformedReport, p.Code, CodeMeasurements)
	}
	nBlocks := int(b[4])
	recLen := int(b[5]) | int(b[6])<<8 | int(b[7])<<16
	off := responseHeaderSize
	if len(b)-off < recLen {
		return nil, fmt.Errorf("%w: measurement record length %d exceeds the response", ErrMalformedReport, recLen)
	}
	blocks, err := parseRecord(b[off:off+recLen], nBlocks)
	if err != nil {
		return nil, err
	}
	p.Blocks = blocks
	off += recLen

	if len(b)-off < NonceSize+2 {
		return nil, fmt.Errorf("%w: responder nonce or opaque length truncated", ErrMalformedReport)
	}
	copy(p.ResponderNonce[:], b[off:off+NonceSize])
	off += NonceSize
	opLen := int(binary.LittleEndian.Uint16(b[off:]))
	off += 2
	if len(b)-off < opLen {
		return nil, fmt.Errorf("%w: opaque data length %d exceeds the response", ErrMalformedReport, opLen)
	}
	p.Opaque = b[off : off+opLen]
	if p.Fields, err = parseOpaque(p.Opaque); err != nil {
		return nil, err
	}
	off += opLen
	if len(b)-off < SignatureSize {
		return nil, fmt.Errorf("%w: signature truncated (%d bytes left, want %d)", ErrMalformedReport, len(b)-off, SignatureSize)
	}
	p.Signature = b[off : off+SignatureSize]
	rep.SignedLen = RequestSize + off
	rep.Trailing = len(b) - off - SignatureSize
	return rep, nil
}

func parseRecord(rec []byte, n int) ([]MeasurementBlock, error) {
	blocks := make([]MeasurementBlock, 0, n)
	off := 0
	seen := make(map[byte]bool, n)
	for i := range n {
		if len(rec)-off < blockHeaderSize {
			return nil, fmt.Errorf("%w: measurement block %d header truncated", ErrMalformedReport, i)
		}
		blk := MeasurementBlock{Index: rec[off], Spec: rec[off+1]}
		size := int(binary.LittleEndian.Uint16(rec[off+2:]))
		off += blockHeaderSize
		if blk.Spec != MeasurementSpecDMTF {
			return nil, fmt.Errorf("%w: measurement block %d specification %#02x is not DMTF", ErrMalformedReport, blk.Index, blk.Spec)
		}
		if seen[blk.Index] {
			return nil, fmt.Errorf("%w: duplicate measurement index %d", ErrMalformedReport, blk.Index)
		}
		seen[blk.Index] = true
		if len(rec)-off < size {
			return nil, fmt.Errorf("%w: measurement block %d overflows the record", ErrMalformedReport, blk.Index)
		}
		m := rec[off : off+size]
		off += size
		if len(m) < dmtfHeaderSize {
			return nil, fmt.Errorf("%w: DMTF measurement %d shorter than its header", ErrMalformedReport, blk.Index)
		}
		blk.ValueType = m[0]
		vs := int(binary.LittleEndian.Uint16(m[1:]))
		if vs != len(m)-dmtfHeaderSize {
			return nil, fmt.Errorf("%w: DMTF measurement %d value size %d does not match block size %d", ErrMalformedReport, blk.Index, vs, size)
		}
		blk.Value = m[dmtfHeaderSize:]
		blocks = append(blocks, blk)
	}
	if off != len(rec) {
		return nil, fmt.Errorf("%w: %d unparsed bytes in the measurement record", ErrMalformedReport, len(rec)-off)
	}
	return blocks, nil
}

func parseOpaque(b []byte) ([]OpaqueField, error) {
	var fields []OpaqueField
	seen := make(map[uint16]bool)
	for off := 0; off < len(b); {
		if len(b)-off < opaqueHeaderSize {
			return nil, fmt.Errorf("%w: opaque item header truncated (%d trailing bytes)", ErrMalformedReport, len(b)-off)
		}
		t := binary.LittleEndian.Uint16(b[off:])
		size := int(binary.LittleEndian.Uint16(b[off+2:]))
		off += opaqueHeaderSize
		if len(b)-off < size {
			return nil, fmt.Errorf("%w: opaque item type %d overflows the opaque data", ErrMalformedReport, t)
		}
		if t == OpaqueInvalid {
			return nil, fmt.Errorf("%w: opaque item type %d is invalid", ErrMalformedReport, t)
		}
		if seen[t] {
			return nil, fmt.Errorf("%w: duplicate opaque item type %d", ErrMalformedReport, t)
		}
		seen[t] = true
		fields = append(fields, OpaqueField{Type: t, Data: b[off : off+size]})
		off += size
	}
	return fields, nil
}
