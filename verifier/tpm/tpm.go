// Package tpm verifies evidence of Trustee's generic "tpm" TEE: a TPM 2.0
// quote signed by an attestation key (AK) that the verifier is configured
// to trust, compatible with Trustee's tpm verifier.
//
// Evidence (guest-components attester):
//
//	{"ak_public":"<std base64 DER SubjectPublicKeyInfo>",
//	 "tpm_quote":{"message":"<std base64 TPMS_ATTEST>",
//	              "signature":"<std base64 TPMT_SIGNATURE>",
//	              "pcrs":["<hex SHA-256 PCR0>", … 24 entries]}}
//
// Trustee's older shape {"ak_public":…,"quote":{"message":[bytes],
// "signature":[raw RSASSA bytes],"pcrs":[[32 bytes],…]}} is accepted too.
//
// Checks, in order: the AK is trusted (SHA-256 of the evidence's DER equals
// that of a configured key); the quote signature verifies with the AK; the
// 24 PCR values hash to the quote's pcrDigest (and the quote selects exactly
// them); with expected report data, the quote's extraData equals it
// zero-padded or truncated to 64 bytes (Trustee's tpm verifier pads to 64);
// with an expected init-data digest (32 bytes), PCR8 == SHA-256(32 zero
// bytes ‖ digest).
//
// Claims (class "cpu"): pcr00 … pcr23 (hex), ak_public (standard base64 of
// the AK's DER, for the default policy's trusted_aks reference value),
// report_data = hex(extraData) and init_data = hex(PCR8), as Trustee emits
// (ak_public is an addition that the default policy reads).
//
// Note: the report data rule is Trustee's verifier code (pad or truncate to
// 64 bytes), which the upstream vector confirms (48-byte SHA-384 + 16 zero
// bytes), not the 32-byte rule some documents state.
//
// Differences from Trustee: RSASSA, RSAPSS and ECDSA TPMT_SIGNATUREs are
// verified with the hash they declare (Trustee accepts RSASSA only and
// assumes SHA-256); the quote must select exactly PCRs 0–23 of the SHA-256
// bank; trusted AK files are read in name order (Trustee: directory order)
// up to MaxTrustedAKs; an init-data digest that is not 32 bytes is an error.
package tpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigil-attestation/sigil/internal/tpm2"
	"github.com/sigil-attestation/sigil/verifier"
)

// Class is the class of the result.
const Class = "cpu"

// DefaultMaxTrustedAKs is Trustee's default max_trusted_ak_keys.
const DefaultMaxTrustedAKs = 100

// DefaultTrustedAKDir is Trustee's default trusted_ak_keys_dir.
const DefaultTrustedAKDir = "/etc/tpm/trusted_ak_keys"

const (
	initDataPCR    = 8
	reportDataSize = 64
	pcrCount       = 24
)

// Errors. Verify wraps them; test with errors.Is.
var (
	ErrMalformedEvidence = errors.New("tpm: malformed evidence")
	ErrUntrustedAK       = errors.New("tpm: the AK public key is not in the list of trusted keys")
	ErrQuote             = errors.New("tpm: malformed TPM quote")
	ErrSignature         = errors.New("tpm: quote signature verification failed")
	ErrPCRDigest         = errors.New("tpm: PCR values do not match the quote's PCR digest")
	ErrNonceMismatch     = errors.New("tpm: quote nonce does not match the expected report data")
	ErrInitDataLength    = errors.New("tpm: init-data digest must be 32 bytes (SHA-256)")
	ErrInitDataMismatch  = errors.New("tpm: PCR8 does not match the init-data digest")
)

// Options configures a Verifier.
type Options struct {
	// TrustedAKDir is Trustee's tpm_verifier.trusted_ak_keys_dir: regular
	// files named *.pub holding a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)
	// are trusted AKs. Files are read in name order; a file that does not
	// parse is logged and skipped. "" means no directory. A directory that
	// cannot be read makes New fail.
	TrustedAKDir string
	// MaxTrustedAKs is Trustee's max_trusted_ak_keys: at most this many
	// *.pub files are read. 0 means DefaultMaxTrustedAKs.
	MaxTrustedAKs int
	// TrustedAKs are further trusted AKs as DER SubjectPublicKeyInfo.
	TrustedAKs [][]byte
	// Logger receives debug and warning logs; nil uses slog.Default().
	Logger *slog.Logger
}

// Verifier verifies tpm evidence. It is safe for concurrent use.
type Verifier struct {
	trusted map[[32]byte]struct{}
	log     *slog.Logger
}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a Verifier trusting the AKs of opts.
func New(opts Options) (*Verifier, error) {
	v := &Verifier{trusted: map[[32]byte]struct{}{}, log: opts.Logger}
	if v.log == nil {
		v.log = slog.Default()
	}
	for i, der := range opts.TrustedAKs {
		h, err := akHash(der)
		if err != nil {
			return nil, fmt.Errorf("tpm: TrustedAKs[%d]: %w", i, err)
		}
		v.trusted[h] = struct{}{}
	}
	if opts.TrustedAKDir != "" {
		max := opts.MaxTrustedAKs
		if max <= 0 {
			max = DefaultMaxTrustedAKs
		}
		if err := v.loadDir(opts.TrustedAKDir, max); err != nil {
			return nil, err
		}
	}
	v.log.Info("tpm verifier ready", "trusted_aks", len(v.trusted))
	return v, nil
}

// akHash re-encodes a DER SubjectPublicKeyInfo and hashes it.
func akHash(der []byte) ([32]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return [32]byte{}, err
	}
	canon, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(canon), nil
}

func (v *Verifier) loadDir(dir string, max int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("tpm: read trusted AK keys directory: %w", err)
	}
	n := 0
	for _, e := range entries { // os.ReadDir sorts by name
		if n >= max {
			break
		}
		if !strings.HasSuffix(e.Name(), ".pub") || !e.Type().IsRegular() {
			continue
		}
		n++
		path := filepath.Join(dir, e.Name())
		h, err := loadPEMKey(path)
		if err != nil {
			v.log.Warn("tpm: skipping trusted AK file", "path", path, "error", err)
			continue
		}
		v.trusted[h] = struct{}{}
	}
	return nil
}

func loadPEMKey(path string) ([32]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return [32]byte{}, errors.New(`no PEM "PUBLIC KEY" block`)
	}
	return akHash(blk.Bytes)
}

// Evidence is decoded tpm evidence.
type Evidence struct {
	// AKPublic is the AK as DER SubjectPublicKeyInfo.
	AKPublic []byte
	// Message is the marshalled TPMS_ATTEST.
	Message []byte
	// Signature is the quote signature.
	Signature *tpm2.Signature
	// PCRs are the SHA-256 PCR values, PCR i at index i.
	PCRs [][]byte
}

type guestQuote struct {
	Message   *string  `json:"message"`
	Signature *string  `json:"signature"`
	PCRs      []string `json:"pcrs"`
}

type legacyQuote struct {
	Message   []int   `json:"message"`
	Signature []int   `json:"signature"`
	PCRs      [][]int `json:"pcrs"`
}

type rawEvidence struct {
	AKPublic *string      `json:"ak_public"`
	TPMQuote *guestQuote  `json:"tpm_quote"`
	Quote    *legacyQuote `json:"quote"`
}

// ParseEvidence decodes tpm evidence (either shape, see the package
// documentation).
func ParseEvidence(raw []byte) (*Evidence, error) {
	var r rawEvidence
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvidence, err)
	}
	if r.AKPublic == nil {
		return nil, fmt.Errorf("%w: missing ak_public", ErrMalformedEvidence)
	}
	ak, err := base64.StdEncoding.DecodeString(*r.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: ak_public: %v", ErrMalformedEvidence, err)
	}
	ev := &Evidence{AKPublic: ak}
	switch {
	case r.TPMQuote != nil:
		q := r.TPMQuote
		if q.Message == nil || q.Signature == nil {
			return nil, fmt.Errorf("%w: tpm_quote: missing message or signature", ErrMalformedEvidence)
		}
		if ev.Message, err = base64.StdEncoding.DecodeString(*q.Message); err != nil {
			return nil, fmt.Errorf("%w: tpm_quote.message: %v", ErrMalformedEvidence, err)
		}
		sig, err := base64.StdEncoding.DecodeString(*q.Signature)
		if err != nil {
			return nil, fmt.Errorf("%w: tpm_quote.signature: %v", ErrMalformedEvidence, err)
		}
		if ev.Signature, err = tpm2.ParseSignature(sig); err != nil {
			return nil, fmt.Errorf("%w: tpm_quote.signature: %w", ErrMalformedEvidence, err)
		}
		for i, p := range q.PCRs {
			if len(p) != 2*sha256.Size {
				return nil, fmt.Errorf("%w: pcrs[%d]: %d hex characters, want 64", ErrMalformedEvidence, i, len(p))
			}
			b, err := hex.DecodeString(p)
			if err != nil {
				return nil, fmt.Errorf("%w: pcrs[%d]: %v", ErrMalformedEvidence, i, err)
			}
			ev.PCRs = append(ev.PCRs, b)
		}
	case r.Quote != nil:
		q := r.Quote
		if ev.Message, err = intsToBytes(q.Message); err != nil {
			return nil, fmt.Errorf("%w: quote.message: %v", ErrMalformedEvidence, err)
		}
		sig, err := intsToBytes(q.Signature)
		if err != nil {
			return nil, fmt.Errorf("%w: quote.signature: %v", ErrMalformedEvidence, err)
		}
		ev.Signature = tpm2.RawRSASSA(sig)
		for i, p := range q.PCRs {
			b, err := intsToBytes(p)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%w: quote.pcrs[%d]: want 32 bytes", ErrMalformedEvidence, i)
			}
			ev.PCRs = append(ev.PCRs, b)
		}
	default:
		return nil, fmt.Errorf("%w: missing tpm_quote", ErrMalformedEvidence)
	}
	if len(ev.PCRs) != pcrCount {
		return nil, fmt.Errorf("%w: %d PCRs, want %d", ErrMalformedEvidence, len(ev.PCRs), pcrCount)
	}
	return ev, nil
}

func intsToBytes(in []int) ([]byte, error) {
	out := make([]byte, len(in))
	for i, n := range in {
		if n < 0 || n > 255 {
			return nil, fmt.Errorf("element %d = %d is not a byte", i, n)
		}
		out[i] = byte(n)
	}
	return out, nil
}

// Verify implements verifier.Verifier.
func (v *Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if exp.InitDataDigest != nil && len(exp.InitDataDigest) != sha256.Size {
		return nil, fmt.Errorf("%w: have %d bytes", ErrInitDataLength, len(exp.InitDataDigest))
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	if _, ok := v.trusted[sha256.Sum256(ev.AKPublic)]; !ok {
		return nil, ErrUntrustedAK
	}
	ak, err := x509.ParsePKIXPublicKey(ev.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: ak_public: %v", ErrMalformedEvidence, err)
	}
	att, err := tpm2.ParseAttest(ev.Message)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	if err := tpm2.VerifySignature(ak, ev.Message, ev.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if !att.SelectsBank(tpm2.AlgSHA256, len(ev.PCRs)) {
		return nil, fmt.Errorf("%w: the quote must select exactly the %d supplied SHA-256 PCRs", ErrPCRDigest, len(ev.PCRs))
	}
	if err := att.CheckPCRs(ev.Signature.Hash, map[uint16][][]byte{tpm2.AlgSHA256: ev.PCRs}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPCRDigest, err)
	}
	if exp.ReportData != nil {
		want := make([]byte, reportDataSize)
		copy(want, exp.ReportData)
		if !bytes.Equal(att.ExtraData, want) {
			return nil, fmt.Errorf("%w: quote has %x", ErrNonceMismatch, att.ExtraData)
		}
	}
	if exp.InitDataDigest != nil {
		var in [64]byte
		copy(in[32:], exp.InitDataDigest)
		want := sha256.Sum256(in[:])
		if !bytes.Equal(ev.PCRs[initDataPCR], want[:]) {
			return nil, fmt.Errorf("%w: PCR8 %x, want %x", ErrInitDataMismatch, ev.PCRs[initDataPCR], want)
		}
	}
	claims := make(map[string]any, pcrCount+3)
	for i, p := range ev.PCRs {
		claims[fmt.Sprintf("pcr%02d", i)] = hex.EncodeToString(p)
	}
	claims["ak_public"] = base64.StdEncoding.EncodeToString(ev.AKPublic)
	claims["report_data"] = hex.EncodeToString(att.ExtraData)
	claims["init_data"] = hex.EncodeToString(ev.PCRs[initDataPCR])
	v.log.DebugContext(ctx, "tpm evidence verified", "firmware_version", att.FirmwareVersion)
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}

// TrustedAKCount reports how many distinct AKs are trusted.
func (v *Verifier) TrustedAKCount() int { return len(v.trusted) }
