// Package azvtpm verifies evidence of Azure confidential VMs with a vTPM:
// tee "az-snp-vtpm" (AMD SEV-SNP) and "az-tdx-vtpm" (Intel TDX), compatible
// with Trustee's az_snp_vtpm and az_tdx_vtpm verifiers.
//
// The evidence holds an HCL report (a hardware report whose report_data
// binds the SHA-256 of a JSON "var data" block that carries the vTPM
// attestation key HCLAkPub) and a vTPM quote signed by that key. Checks, in
// order:
//
//  1. the quote's raw RSASSA/SHA-256 signature verifies with HCLAkPub;
//  2. for evidence version 2, the var-data "user-data" starts with the
//     expected report data;
//  3. the quote's extraData equals the expected report data exactly;
//  4. the 24 SHA-256 PCR values hash to the quote's pcrDigest, and the quote
//     selects exactly those PCRs;
//  5. hardware report_data[0:32] equals SHA-256(var data) (SNP report, or
//     for TDX the TD quote, whose mr_td must also equal the HCL TDREPORT's);
//  6. the hardware report is genuine (SNP: VCEK chain and signature via
//     SNPReportVerifier, VCEK TCB/hwID == report, VMPL 0; TDX: the TD quote
//     via TDQuoteVerifier);
//  7. with an expected init-data digest (32 bytes): PCR8 ==
//     SHA-256(32 zero bytes ‖ digest).
//
// Claims follow Trustee: for az-snp-vtpm the SNP policy/TCB/platform fields
// as strings and the measurement in standard base64; for az-tdx-vtpm the TDX
// verifier's claims; for both "tpm" {pcr00…pcr23: hex}, "report_data" =
// hex(quote extraData) and "init_data" = hex(PCR8).
//
// Differences from Trustee, all stricter or wider but never accepting
// evidence Trustee would reject for a cryptographic reason:
//   - the quote must select exactly PCRs 0–23 of the SHA-256 bank (Trustee
//     hashes whatever PCR list is supplied without reading the selection);
//   - the VCEK's hwID is compared with chip_id for every VCEK (Trustee only
//     when the certificate's CN is "VCEK", which AMD VCEKs never have);
//   - VCEKs of every AMD product (Milan, Genoa, Turin) are accepted through
//     verifier/snp, which also accepts the version 2 reports Azure embeds;
//   - for version 2 the user-data check runs before the nonce check, so a
//     wrong report data is reported as ErrUserDataMismatch;
//   - an init-data digest that is not 32 bytes is an error (Trustee would
//     panic).
//
// Like Trustee, both verifiers require expected report data
// (ErrReportDataRequired when exp.ReportData is nil).
package azvtpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sigil-attestation/sigil/internal/tpm2"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/snp"
)

// Class is the class of the results.
const Class = "cpu"

// TEE names.
const (
	TEESNP = kindSNP
	TEETDX = kindTDX
)

// initDataPCR is the PCR that the guest extends with the init-data digest.
const initDataPCR = 8

// Errors. Verify wraps them (sometimes two: the check and its cause); test
// with errors.Is.
var (
	ErrMalformedEvidence  = errors.New("azvtpm: malformed evidence")
	ErrUnsupportedVersion = errors.New("azvtpm: unsupported evidence version")
	ErrHCLReport          = errors.New("azvtpm: malformed HCL report")
	ErrReportType         = errors.New("azvtpm: HCL hardware report type does not match the TEE")
	ErrAKUnusable         = errors.New("azvtpm: attestation key (HCLAkPub) unusable")
	ErrQuote              = errors.New("azvtpm: malformed vTPM quote")
	ErrQuoteSignature     = errors.New("azvtpm: vTPM quote is not signed by HCLAkPub")
	ErrReportDataRequired = errors.New("azvtpm: expected report data is required")
	ErrNonceMismatch      = errors.New("azvtpm: TPM quote nonce does not match the expected report data")
	ErrUserDataMismatch   = errors.New("azvtpm: HCL user-data does not match the expected report data")
	ErrPCRDigest          = errors.New("azvtpm: PCR values do not match the quote's PCR digest")
	ErrVarDataBinding     = errors.New("azvtpm: hardware report_data does not bind the HCL var data")
	ErrSNPReport          = errors.New("azvtpm: SNP report verification failed")
	ErrTCBMismatch        = errors.New("azvtpm: SNP reported TCB does not match the VCEK")
	ErrChipIDMismatch     = errors.New("azvtpm: SNP chip_id does not match the VCEK hwID")
	ErrVMPL               = errors.New("azvtpm: SNP report is not from VMPL 0")
	ErrTDQuote            = errors.New("azvtpm: TD quote verification failed")
	ErrMRTDMismatch       = errors.New("azvtpm: TD quote mr_td differs from the HCL TDREPORT")
	ErrInitDataLength     = errors.New("azvtpm: init-data digest must be 32 bytes (SHA-256)")
	ErrInitDataMismatch   = errors.New("azvtpm: PCR8 does not match the init-data digest")
)

// SNPOptions configures the az-snp-vtpm verifier.
type SNPOptions struct {
	// SNP verifies the embedded SEV-SNP report's VCEK chain and signature.
	// Nil means SNPFromVerifier(snp.New(snp.Options{Now, Roots, Logger})):
	// the embedded AMD roots of every product (Milan, Genoa, Turin), VCEK
	// taken from the evidence.
	SNP SNPReportVerifier
	// Now is the clock for certificate validity of the default SNP
	// verifier; nil means time.Now. Ignored when SNP is set.
	Now func() time.Time
	// Roots overrides AMD CA bundles (PEM ASK, ARK, ASVK) per product for
	// the default SNP verifier. Ignored when SNP is set.
	Roots map[snp.Product][]byte
	// Logger receives debug logs; nil uses slog.Default().
	Logger *slog.Logger
}

// TDXOptions configures the az-tdx-vtpm verifier.
type TDXOptions struct {
	// TDX verifies the TD quote and returns its claims. Required; use
	// TDXFromVerifier to wrap a "tdx" verifier.Verifier.
	TDX TDQuoteVerifier
	// Logger receives debug logs; nil uses slog.Default().
	Logger *slog.Logger
}

// SNPVerifier verifies az-snp-vtpm evidence.
type SNPVerifier struct {
	snp SNPReportVerifier
	log *slog.Logger
}

// TDXVerifier verifies az-tdx-vtpm evidence.
type TDXVerifier struct {
	tdx TDQuoteVerifier
	log *slog.Logger
}

var (
	_ verifier.Verifier = (*SNPVerifier)(nil)
	_ verifier.Verifier = (*TDXVerifier)(nil)
)

// NewSNP returns an az-snp-vtpm verifier.
func NewSNP(opts SNPOptions) (*SNPVerifier, error) {
	log := logger(opts.Logger)
	sv := opts.SNP
	if sv == nil {
		v, err := snp.New(snp.Options{Now: opts.Now, Roots: opts.Roots, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("azvtpm: %w", err)
		}
		sv = SNPFromVerifier(v)
	}
	return &SNPVerifier{snp: sv, log: log}, nil
}

// NewTDX returns an az-tdx-vtpm verifier.
func NewTDX(opts TDXOptions) (*TDXVerifier, error) {
	if opts.TDX == nil {
		return nil, errors.New("azvtpm: TDXOptions.TDX is required")
	}
	return &TDXVerifier{tdx: opts.TDX, log: logger(opts.Logger)}, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// vtpmResult is what the TPM-side checks establish.
type vtpmResult struct {
	hcl    *HCLReport
	attest *tpm2.Attest
}

// verifyVTPM runs checks 1–4 (and parses the HCL report).
func verifyVTPM(ev *Evidence, wantType uint32, exp verifier.Expected) (*vtpmResult, error) {
	if exp.ReportData == nil {
		return nil, ErrReportDataRequired
	}
	if exp.InitDataDigest != nil && len(exp.InitDataDigest) != sha256.Size {
		return nil, fmt.Errorf("%w: have %d bytes", ErrInitDataLength, len(exp.InitDataDigest))
	}
	hcl, err := ParseHCLReport(ev.HCLReport)
	if err != nil {
		return nil, err
	}
	if hcl.ReportType != wantType {
		return nil, fmt.Errorf("%w: type %d, want %d", ErrReportType, hcl.ReportType, wantType)
	}
	att, err := tpm2.ParseAttest(ev.Quote.Message)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	ak, err := hcl.AKPublic()
	if err != nil {
		return nil, err
	}
	if err := tpm2.VerifySignature(ak, ev.Quote.Message, tpm2.RawRSASSA(ev.Quote.Signature)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuoteSignature, err)
	}
	if ev.Version >= 2 {
		ud, err := hcl.UserData()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUserDataMismatch, err)
		}
		if !bytes.HasPrefix(ud, exp.ReportData) {
			return nil, ErrUserDataMismatch
		}
	}
	if subtle.ConstantTimeCompare(att.ExtraData, exp.ReportData) != 1 {
		return nil, fmt.Errorf("%w: quote has %x", ErrNonceMismatch, att.ExtraData)
	}
	if len(ev.Quote.PCRs) != 24 || !att.SelectsBank(tpm2.AlgSHA256, len(ev.Quote.PCRs)) {
		return nil, fmt.Errorf("%w: the quote must select exactly the %d supplied SHA-256 PCRs", ErrPCRDigest, len(ev.Quote.PCRs))
	}
	if err := att.CheckPCRs(tpm2.AlgSHA256, map[uint16][][]byte{tpm2.AlgSHA256: ev.Quote.PCRs}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPCRDigest, err)
	}
	return &vtpmResult{hcl: hcl, attest: att}, nil
}

// checkVarDataBinding checks that a hardware report_data starts with
// SHA-256(var data).
func checkVarDataBinding(hcl *HCLReport, reportData []byte) error {
	vh := hcl.VarDataSHA256()
	if len(reportData) < len(vh) || !bytes.Equal(reportData[:len(vh)], vh[:]) {
		return fmt.Errorf("%w: report_data %x, SHA-256(var data) %x", ErrVarDataBinding, reportData, vh)
	}
	return nil
}

// checkInitData runs check 7.
func checkInitData(pcrs [][]byte, digest []byte) error {
	if digest == nil {
		return nil
	}
	var in [64]byte
	copy(in[32:], digest)
	want := sha256.Sum256(in[:])
	if !bytes.Equal(pcrs[initDataPCR], want[:]) {
		return fmt.Errorf("%w: PCR8 %x, want %x", ErrInitDataMismatch, pcrs[initDataPCR], want)
	}
	return nil
}

// addTPMClaims adds "tpm", "report_data" and "init_data" as Trustee does.
func addTPMClaims(claims map[string]any, att *tpm2.Attest, pcrs [][]byte) {
	tpm := make(map[string]any, len(pcrs))
	for i, p := range pcrs {
		tpm[pcrKey(i)] = hex.EncodeToString(p)
	}
	claims["tpm"] = tpm
	claims["report_data"] = hex.EncodeToString(att.ExtraData)
	claims["init_data"] = hex.EncodeToString(pcrs[initDataPCR])
}

// Verify implements verifier.Verifier for az-snp-vtpm.
func (v *SNPVerifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(TEESNP, evidence)
	if err != nil {
		return nil, err
	}
	vt, err := verifyVTPM(ev, ReportTypeSNP, exp)
	if err != nil {
		return nil, err
	}
	rep, err := parseSNPReport(vt.hcl.HardwareReport)
	if err != nil {
		return nil, err
	}
	if err := checkVarDataBinding(vt.hcl, rep.reportData); err != nil {
		return nil, err
	}
	if err := checkVCEKBinding(rep, ev.VCEK); err != nil {
		return nil, err
	}
	var crlStatus, crlReason string
	if cr, ok := v.snp.(crlReporter); ok {
		if crlStatus, crlReason, err = cr.verifySNPReportCRL(ctx, vt.hcl.HardwareReport, ev.VCEK); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSNPReport, err)
		}
	} else if err := v.snp.VerifySNPReport(ctx, vt.hcl.HardwareReport, ev.VCEK); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSNPReport, err)
	}
	if rep.vmpl != 0 {
		return nil, fmt.Errorf("%w: VMPL %d", ErrVMPL, rep.vmpl)
	}
	if err := checkInitData(ev.Quote.PCRs, exp.InitDataDigest); err != nil {
		return nil, err
	}
	claims := rep.claims()
	if crlStatus != "" {
		claims["crl_status"] = crlStatus
		if crlReason != "" {
			claims["crl_status_reason"] = crlReason
		}
	}
	addTPMClaims(claims, vt.attest, ev.Quote.PCRs)
	v.log.DebugContext(ctx, "az-snp-vtpm evidence verified", "version", ev.Version, "snp_report_version", rep.version)
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}

// Verify implements verifier.Verifier for az-tdx-vtpm.
func (v *TDXVerifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(TEETDX, evidence)
	if err != nil {
		return nil, err
	}
	vt, err := verifyVTPM(ev, ReportTypeTDX, exp)
	if err != nil {
		return nil, err
	}
	mrTD, reportData, err := tdQuoteFields(ev.TDQuote)
	if err != nil {
		return nil, err
	}
	if err := checkVarDataBinding(vt.hcl, reportData); err != nil {
		return nil, err
	}
	hclMRTD := vt.hcl.HardwareReport[tdReportMRTD : tdReportMRTD+48]
	if !bytes.Equal(hclMRTD, mrTD) {
		return nil, fmt.Errorf("%w: quote %x, TDREPORT %x", ErrMRTDMismatch, mrTD, hclMRTD)
	}
	tdClaims, err := v.tdx.VerifyTDQuote(ctx, ev.TDQuote)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTDQuote, err)
	}
	if err := checkInitData(ev.Quote.PCRs, exp.InitDataDigest); err != nil {
		return nil, err
	}
	claims := make(map[string]any, len(tdClaims)+3)
	for k, val := range tdClaims {
		claims[k] = val
	}
	addTPMClaims(claims, vt.attest, ev.Quote.PCRs)
	v.log.DebugContext(ctx, "az-tdx-vtpm evidence verified", "version", ev.Version)
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}
