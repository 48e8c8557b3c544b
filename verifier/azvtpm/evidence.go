package azvtpm

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// Quote is a vTPM quote as carried in the evidence: the marshalled
// TPMS_ATTEST, the raw RSASSA-PKCS1-v1_5/SHA-256 signature over it, and the
// SHA-256 PCR bank (PCR i at index i).
type Quote struct {
	Message   []byte
	Signature []byte
	PCRs      [][]byte
}

// Evidence is decoded az-snp-vtpm or az-tdx-vtpm evidence, whatever its
// version.
type Evidence struct {
	// Version is the evidence format version: 0 (no version member), 1 or 2.
	Version int
	// HCLReport is the raw HCL report.
	HCLReport []byte
	// Quote is the vTPM quote.
	Quote Quote
	// VCEK is the VCEK certificate (DER), az-snp-vtpm only. Version 0
	// carries PEM: the first CERTIFICATE block is taken.
	VCEK []byte
	// TDQuote is the raw TD quote, az-tdx-vtpm only.
	TDQuote []byte
}

// Evidence kinds for ParseEvidence.
const (
	kindSNP = "az-snp-vtpm"
	kindTDX = "az-tdx-vtpm"
)

// byteArray decodes a JSON array of byte values (serde's Vec<u8>).
type byteArray []byte

func (b *byteArray) UnmarshalJSON(data []byte) error {
	// Hand-rolled: the v0 HCL report is 2600 numbers, and reflection-based
	// decoding into []int dominates parsing otherwise. encoding/json has
	// already checked that data is well-formed JSON.
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return errors.New("byte array: not a JSON array")
	}
	out := make([]byte, 0, len(data)/3)
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		*b = out
		return nil
	}
	for {
		v, digits := 0, 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			v = v*10 + int(data[i]-'0')
			digits++
			i++
			if v > 255 {
				return fmt.Errorf("byte array: element %d out of range", len(out))
			}
		}
		if digits == 0 || digits > 1 && data[i-digits] == '0' {
			return fmt.Errorf("byte array: element %d is not a byte value", len(out))
		}
		out = append(out, byte(v))
		i = skipSpace(data, i)
		if i >= len(data) {
			return errors.New("byte array: unterminated")
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			if skipSpace(data, i+1) != len(data) {
				return errors.New("byte array: trailing data")
			}
			*b = out
			return nil
		default:
			return fmt.Errorf("byte array: element %d is not a byte value", len(out)-1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// hexBytes decodes a hex string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("hex string: %w", err)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex string: %w", err)
	}
	*h = b
	return nil
}

// urlB64 decodes URL-safe base64 with padding (as serde_with's
// Base64<UrlSafe> writes it); missing padding is tolerated.
type urlB64 []byte

func (u *urlB64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("base64url string: %w", err)
	}
	b, err := b64url(s)
	if err != nil {
		return fmt.Errorf("base64url string: %w", err)
	}
	*u = b
	return nil
}

type quoteV0 struct {
	Signature *byteArray  `json:"signature"`
	Message   *byteArray  `json:"message"`
	PCRs      []byteArray `json:"pcrs"`
}

type quoteV1 struct {
	Signature *hexBytes  `json:"signature"`
	Message   *hexBytes  `json:"message"`
	PCRs      []hexBytes `json:"pcrs"`
}

// ParseEvidence decodes az-snp-vtpm (tee "az-snp-vtpm") or az-tdx-vtpm
// (tee "az-tdx-vtpm") evidence of any known version:
//
//   - version 0 (no "version" member): az-snp-vtpm
//     {"quote":{message,signature,pcrs},"report":[…],"vcek":"PEM"} and
//     az-tdx-vtpm {"tpm_quote":{…},"hcl_report":[…],"td_quote":[…]}, all
//     bytes as JSON number arrays;
//   - versions 1 and 2: {"version":N,"tpm_quote":{hex message, hex
//     signature, 24 hex pcrs},"hcl_report":b64url,"vcek"|"td_quote":b64url}.
func ParseEvidence(tee string, raw []byte) (*Evidence, error) {
	if tee != kindSNP && tee != kindTDX {
		return nil, fmt.Errorf("%w: unknown tee %q", ErrMalformedEvidence, tee)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvidence, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedEvidence)
	}
	ev := &Evidence{}
	var err error
	if v, ok := top["version"]; ok {
		if err := json.Unmarshal(v, &ev.Version); err != nil {
			return nil, fmt.Errorf("%w: version: %v", ErrMalformedEvidence, err)
		}
		if ev.Version != 1 && ev.Version != 2 {
			return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, ev.Version)
		}
		err = ev.decodeV1(tee, top)
	} else {
		err = ev.decodeV0(tee, top)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvidence, err)
	}
	return ev, nil
}

func member(top map[string]json.RawMessage, name string, dst any) error {
	v, ok := top[name]
	if !ok || bytes.Equal(v, []byte("null")) {
		return fmt.Errorf("missing %q", name)
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (ev *Evidence) decodeV1(tee string, top map[string]json.RawMessage) error {
	var q quoteV1
	if err := member(top, "tpm_quote", &q); err != nil {
		return err
	}
	if q.Message == nil || q.Signature == nil || q.PCRs == nil {
		return errors.New("tpm_quote: missing message, signature or pcrs")
	}
	ev.Quote = Quote{Message: *q.Message, Signature: *q.Signature}
	for _, p := range q.PCRs {
		ev.Quote.PCRs = append(ev.Quote.PCRs, p)
	}
	var hcl urlB64
	if err := member(top, "hcl_report", &hcl); err != nil {
		return err
	}
	ev.HCLReport = hcl
	if tee == kindSNP {
		var vcek urlB64
		if err := member(top, "vcek", &vcek); err != nil {
			return err
		}
		ev.VCEK = vcek
		return nil
	}
	var td urlB64
	if err := member(top, "td_quote", &td); err != nil {
		return err
	}
	ev.TDQuote = td
	return nil
}

func (ev *Evidence) decodeV0(tee string, top map[string]json.RawMessage) error {
	var q quoteV0
	quoteName, reportName := "quote", "report"
	if tee == kindTDX {
		quoteName, reportName = "tpm_quote", "hcl_report"
	}
	if err := member(top, quoteName, &q); err != nil {
		return err
	}
	if q.Message == nil || q.Signature == nil || q.PCRs == nil {
		return fmt.Errorf("%s: missing message, signature or pcrs", quoteName)
	}
	ev.Quote = Quote{Message: *q.Message, Signature: *q.Signature}
	for _, p := range q.PCRs {
		ev.Quote.PCRs = append(ev.Quote.PCRs, p)
	}
	var hcl byteArray
	if err := member(top, reportName, &hcl); err != nil {
		return err
	}
	ev.HCLReport = hcl
	if tee == kindSNP {
		var vcekPEM string
		if err := member(top, "vcek", &vcekPEM); err != nil {
			return err
		}
		der, err := firstCertificate([]byte(vcekPEM))
		if err != nil {
			return fmt.Errorf("vcek: %w", err)
		}
		ev.VCEK = der
		return nil
	}
	var td byteArray
	if err := member(top, "td_quote", &td); err != nil {
		return err
	}
	ev.TDQuote = td
	return nil
}

// firstCertificate returns the DER of the first CERTIFICATE block of a PEM
// text.
func firstCertificate(text []byte) ([]byte, error) {
	rest := text
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if blk.Type == "CERTIFICATE" {
			return blk.Bytes, nil
		}
	}
}

// DecodeBincodeQuote decodes a vTPM quote serialised with Rust bincode
// (the layout of Trustee's quote.bin test file): u64-LE length + signature,
// u64-LE length + message, u64-LE count + count × 32-byte SHA-256 PCRs.
func DecodeBincodeQuote(b []byte) (Quote, error) {
	var q Quote
	take := func(n uint64) ([]byte, error) {
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: bincode quote truncated", ErrMalformedEvidence)
		}
		v := b[:n]
		b = b[n:]
		return v, nil
	}
	u64 := func() (uint64, error) {
		v, err := take(8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(v), nil
	}
	n, err := u64()
	if err != nil {
		return q, err
	}
	if q.Signature, err = take(n); err != nil {
		return q, err
	}
	if n, err = u64(); err != nil {
		return q, err
	}
	if q.Message, err = take(n); err != nil {
		return q, err
	}
	if n, err = u64(); err != nil {
		return q, err
	}
	if n > 64 {
		return q, fmt.Errorf("%w: bincode quote has %d PCRs", ErrMalformedEvidence, n)
	}
	for range n {
		p, err := take(32)
		if err != nil {
			return q, err
		}
		q.PCRs = append(q.PCRs, p)
	}
	if len(b) != 0 {
		return q, fmt.Errorf("%w: %d trailing bytes after bincode quote", ErrMalformedEvidence, len(b))
	}
	return q, nil
}

// base64Std is the encoding of the measurement claim (as Trustee prints it).
var base64Std = base64.StdEncoding

// pcrKey is the claim name of PCR i ("pcr00" … "pcr23").
func pcrKey(i int) string { return fmt.Sprintf("pcr%02d", i) }
