package azvtpm

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/sigil-attestation/sigil/verifier/snp"
)

// SNPReportVerifier checks that a raw SEV-SNP attestation report is
// genuine: the VCEK (DER) chains to AMD's root for its product and its key
// signs the report. Report version 2 must be accepted (Azure HCL reports
// embed version 2 reports and Trustee's Azure verifier accepts them).
// Comparing the VCEK's TCB and hwID extensions with the report and checking
// VMPL 0 is done by this package.
type SNPReportVerifier interface {
	VerifySNPReport(ctx context.Context, report, vcekDER []byte) error
}

// SNPFromVerifier adapts the "snp" verifier's VerifyReport (which accepts
// report version 2, as Trustee's Azure verifier does) to SNPReportVerifier.
// The adapter also reports the ASK/ASVK revocation check (crlReporter), so
// az-snp-vtpm claims carry crl_status as snp claims do.
func SNPFromVerifier(v *snp.Verifier) SNPReportVerifier { return snpAdapter{v} }

type snpAdapter struct{ v *snp.Verifier }

func (a snpAdapter) VerifySNPReport(ctx context.Context, report, vcekDER []byte) error {
	_, err := a.v.VerifyReport(ctx, report, snp.CertChain{VCEK: vcekDER})
	return err
}

func (a snpAdapter) verifySNPReportCRL(ctx context.Context, report, vcekDER []byte) (status, reason string, err error) {
	_, status, reason, err = a.v.VerifyReportCRL(ctx, report, snp.CertChain{VCEK: vcekDER})
	return status, reason, err
}

// crlReporter is an SNPReportVerifier that also says how revocation was
// checked (the crl_status and crl_status_reason claims).
type crlReporter interface {
	verifySNPReportCRL(ctx context.Context, report, vcekDER []byte) (status, reason string, err error)
}

// SNPReportVerifierFunc adapts a function to SNPReportVerifier.
type SNPReportVerifierFunc func(ctx context.Context, report, vcekDER []byte) error

// VerifySNPReport implements SNPReportVerifier.
func (f SNPReportVerifierFunc) VerifySNPReport(ctx context.Context, report, vcekDER []byte) error {
	return f(ctx, report, vcekDER)
}

// snpReport holds the SEV-SNP report fields this package reads.
type snpReport struct {
	version    uint32
	policy     uint64
	vmpl       uint32
	platInfo   uint64
	reportData []byte
	measure    []byte
	hostData   []byte
	tcb        tcbParts
	cpuidFam   uint8
	chipID     []byte
}

type tcbParts struct {
	fmc, bootloader, tee, snp, microcode uint8
}

func parseSNPReport(b []byte) (*snpReport, error) {
	if len(b) < snpReportSize {
		return nil, fmt.Errorf("%w: SNP report has %d bytes, want %d", ErrHCLReport, len(b), snpReportSize)
	}
	le := binary.LittleEndian
	r := &snpReport{
		version:    le.Uint32(b[0x00:]),
		policy:     le.Uint64(b[0x08:]),
		vmpl:       le.Uint32(b[0x30:]),
		platInfo:   le.Uint64(b[0x40:]),
		reportData: b[0x50:0x90],
		measure:    b[0x90:0xC0],
		hostData:   b[0xC0:0xE0],
		chipID:     b[0x1A0:0x1E0],
	}
	if r.version >= 3 {
		r.cpuidFam = b[0x188]
	}
	t := b[0x180:0x188]
	if r.cpuidFam == 0x1A { // Turin: fmc, bl, tee, snp, 0, 0, 0, ucode
		r.tcb = tcbParts{fmc: t[0], bootloader: t[1], tee: t[2], snp: t[3], microcode: t[7]}
	} else { // Milan, Genoa: bl, tee, 0, 0, 0, 0, snp, ucode
		r.tcb = tcbParts{bootloader: t[0], tee: t[1], snp: t[6], microcode: t[7]}
	}
	return r, nil
}

// claims returns Trustee's az-snp-vtpm claim set for the report (before the
// TPM values are added): decimal strings, "true"/"false", and the
// measurement in standard base64.
func (r *snpReport) claims() map[string]any {
	bit := func(v uint64, n uint) string { return strconv.FormatBool(v&(1<<n) != 0) }
	u := func(v uint8) string { return strconv.Itoa(int(v)) }
	return map[string]any{
		"policy_abi_major":        strconv.FormatUint((r.policy>>8)&0xff, 10),
		"policy_abi_minor":        strconv.FormatUint(r.policy&0xff, 10),
		"policy_smt_allowed":      bit(r.policy, 16),
		"policy_migrate_ma":       bit(r.policy, 18),
		"policy_debug_allowed":    bit(r.policy, 19),
		"policy_single_socket":    bit(r.policy, 20),
		"reported_tcb_bootloader": u(r.tcb.bootloader),
		"reported_tcb_tee":        u(r.tcb.tee),
		"reported_tcb_snp":        u(r.tcb.snp),
		"reported_tcb_microcode":  u(r.tcb.microcode),
		"platform_tsme_enabled":   bit(r.platInfo, 1),
		"platform_smt_enabled":    bit(r.platInfo, 0),
		"measurement":             base64Std.EncodeToString(r.measure),
	}
}

// AMD VCEK extension OIDs.
var (
	oidBLSPL    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 1}
	oidTEESPL   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 2}
	oidSNPSPL   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 3}
	oidUcodeSPL = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 8}
	oidFMCSPL   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 3, 9}
	oidHWID     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}
)

// checkVCEKBinding compares the VCEK's SPL extensions with the report's
// reported TCB, and its hwID (when present) with the chip ID.
func checkVCEKBinding(r *snpReport, vcekDER []byte) error {
	cert, err := x509.ParseCertificate(vcekDER)
	if err != nil {
		return fmt.Errorf("%w: VCEK: %v", ErrSNPReport, err)
	}
	ints := map[string]int{}
	var hwid []byte
	for _, e := range cert.Extensions {
		switch {
		case e.Id.Equal(oidBLSPL), e.Id.Equal(oidTEESPL), e.Id.Equal(oidSNPSPL), e.Id.Equal(oidUcodeSPL), e.Id.Equal(oidFMCSPL):
			var v int
			if rest, err := asn1.Unmarshal(e.Value, &v); err != nil || len(rest) != 0 || v < 0 || v > 255 {
				return fmt.Errorf("%w: VCEK extension %v is not a small INTEGER", ErrSNPReport, e.Id)
			}
			ints[e.Id.String()] = v
		case e.Id.Equal(oidHWID):
			hwid = e.Value
			var inner []byte
			if rest, err := asn1.Unmarshal(e.Value, &inner); err == nil && len(rest) == 0 && len(inner) == 64 {
				hwid = inner
			}
		}
	}
	check := func(oid asn1.ObjectIdentifier, name string, got uint8) error {
		want, ok := ints[oid.String()]
		if !ok {
			return fmt.Errorf("%w: VCEK lacks the %s SPL extension", ErrTCBMismatch, name)
		}
		if int(got) != want {
			return fmt.Errorf("%w: %s SPL: report %d, VCEK %d", ErrTCBMismatch, name, got, want)
		}
		return nil
	}
	if err := check(oidUcodeSPL, "microcode", r.tcb.microcode); err != nil {
		return err
	}
	if err := check(oidSNPSPL, "SNP", r.tcb.snp); err != nil {
		return err
	}
	if err := check(oidTEESPL, "TEE", r.tcb.tee); err != nil {
		return err
	}
	if err := check(oidBLSPL, "boot loader", r.tcb.bootloader); err != nil {
		return err
	}
	if _, ok := ints[oidFMCSPL.String()]; ok {
		if err := check(oidFMCSPL, "FMC", r.tcb.fmc); err != nil {
			return err
		}
	}
	if hwid != nil && !bytes.Equal(hwid, r.chipID) {
		return fmt.Errorf("%w: report chip_id %x…, VCEK hwID %x…", ErrChipIDMismatch, r.chipID[:8], hwid[:min(8, len(hwid))])
	}
	return nil
}
