// Package snp verifies AMD SEV-SNP evidence (Trustee tee "snp").
//
// Verification (genuineness and binding) follows Trustee's snp verifier:
//
//  1. Report version: MinReportVersion (default 3, as Trustee's
//     REPORT_VERSION_MIN) to MaxReportVersion (default 5).
//  2. Product from CPUID (family 0x19 models 0x00–0x0F Milan, 0x10–0x1F
//     and 0xA0–0xAE Genoa; family 0x1A models 0x00–0x11 Turin), or from
//     the VEK's productName for a version 2 report (VerifyReport only).
//  3. The endorsement key named by the report's SIGNING_KEY: a VCEK (from
//     the evidence, else from the configured VCEK sources: AMD KDS or an
//     offline store) chained VCEK → ASK → ARK, or a VLEK (from the
//     evidence) chained VLEK → ASVK → ARK, against the embedded AMD roots
//     (or Options.Roots). With Options.CRL, the ARK-issued CRL: a revoked
//     ASK/ASVK fails verification; a CRL that cannot be obtained does not,
//     but the crl_status claim says so.
//  4. ECDSA P-384/SHA-384 signature over report bytes 0x000–0x29F; r and s
//     are little-endian at 0x2A0 and 0x2E8.
//  5. REPORTED_TCB equals the VEK's SPL extensions (fmcSPL too for Turin);
//     for a VCEK, CHIP_ID equals its hwID.
//  6. Verify only: VMPL 0, REPORT_DATA == expected report data regularised
//     (zero-padded or truncated) to 64 bytes, HOST_DATA == expected
//     init-data digest regularised to 32 bytes.
//
// Appraisal is the policy's job: Verify returns Report.Claims plus the
// crl_status claim (CRLChecked, CRLUnavailable or CRLSkipped; with
// crl_status_reason when not cleanly checked) as one "cpu" result.
//
// Deliberate difference from Trustee: Trustee compares CHIP_ID with hwID
// only when the VEK's common name is exactly "VCEK", which AMD's VCEKs
// ("SEV-VCEK") never have, so it never checks it. Sigil checks it for every
// VCEK-signed report.
package snp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/snp/kds"
)

// Class is the class of the result Verify returns.
const Class = "cpu"

// Errors. Every verification failure wraps one of these.
var (
	ErrMalformedEvidence   = errors.New("snp: malformed evidence")
	ErrMalformedReport     = errors.New("snp: malformed attestation report")
	ErrReportVersion       = errors.New("snp: report version too old")
	ErrReportVersionNew    = errors.New("snp: unexpected (too new) report version")
	ErrUnknownProduct      = errors.New("snp: unknown or unsupported processor")
	ErrSigningKey          = errors.New("snp: unsupported signing key")
	ErrNoVEK               = errors.New("snp: no endorsement key (VCEK/VLEK) available")
	ErrBadVEKExtensions    = errors.New("snp: bad VCEK/VLEK extensions")
	ErrCertChain           = errors.New("snp: certificate chain invalid")
	ErrCertExpired         = errors.New("snp: certificate not valid at this time")
	ErrCertRevoked         = errors.New("snp: certificate revoked")
	ErrSignature           = errors.New("snp: report signature invalid")
	ErrTCBMismatch         = errors.New("snp: reported TCB differs from the endorsement key's TCB")
	ErrChipIDMismatch      = errors.New("snp: chip id differs from the VCEK hwID")
	ErrProductMismatch     = errors.New("snp: endorsement key is for another product")
	ErrVMPL                = errors.New("snp: VMPL check failed (must be 0)")
	ErrReportDataMismatch  = errors.New("snp: report data mismatch")
	ErrHostDataMismatch    = errors.New("snp: host data (init-data digest) mismatch")
	ErrCRLUnavailable      = errors.New("snp: CRL unavailable")
	ErrUntrustedRoot       = errors.New("snp: supplied ARK is not the trusted ARK")
	ErrSignatureAlgorithm  = errors.New("snp: unsupported signature algorithm")
	ErrVCEKSourcesNotFound = errors.New("snp: no VCEK source had the VCEK")
)

// CRLGetter returns the DER CRL issued by a product's ARK ("Milan",
// "Genoa", "Turin"). *kds.Client, *kds.OfflineStore and kds.CRLSources
// implement it. Returning (nil, nil) means "no CRL available".
type CRLGetter interface {
	CRL(ctx context.Context, product string) ([]byte, error)
}

// Values of the crl_status claim.
const (
	// CRLChecked: the ARK-signed CRL was obtained and does not list the
	// report's intermediate (ASK or ASVK). A CRL past its NextUpdate is
	// still used; crl_status_reason then says so.
	CRLChecked = "checked"
	// CRLUnavailable: no valid CRL could be obtained (the getter failed or
	// had none, or the CRL did not parse or was not signed by the ARK).
	// Verification does not fail; crl_status_reason says why.
	CRLUnavailable = "unavailable"
	// CRLSkipped: no CRL getter is configured (Options.CRL is nil).
	CRLSkipped = "skipped"
)

// Options configures a Verifier. The zero value is usable: embedded roots,
// no VCEK sources (the evidence must carry the VEK), no CRL, report
// versions 3 to 5, time.Now.
type Options struct {
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// Roots overrides the AMD CA bundle per product: PEM with ASK, ARK,
	// ASVK in that order. Products not in the map use the embedded bundles.
	Roots map[Product][]byte
	// VCEKSources are asked, in order, for the VCEK when the evidence has
	// no VEK (Trustee's snp_verifier.vcek_sources; *kds.Client and
	// *kds.OfflineStore implement kds.Source). Empty means none.
	VCEKSources []kds.Source
	// CRL, when set, supplies the ARK's CRL; the intermediate (ASK/ASVK)
	// must not be listed (ErrCertRevoked). When no valid CRL can be had
	// (getter error or no CRL, unparsable or badly signed CRL) verification
	// goes on with crl_status "unavailable". Nil means no check
	// (crl_status "skipped").
	CRL CRLGetter
	// MinReportVersion is the lowest report version Verify accepts; 0 means
	// 3 (Trustee's REPORT_VERSION_MIN). VerifyReport accepts version 2 too.
	MinReportVersion uint32
	// MaxReportVersion is the highest report version Verify accepts; 0
	// means 5.
	MaxReportVersion uint32
	// MaxCachedVEKs bounds the cache of parsed and chain-verified
	// endorsement keys; 0 means 1024.
	MaxCachedVEKs int
	// Logger receives debug logs; nil means slog.Default().
	Logger *slog.Logger
}

// interKey identifies a supplied intermediate verified under one ARK.
type interKey struct {
	der [32]byte
	ark *x509.Certificate
}

type vekEntry struct {
	cert *x509.Certificate
	info *VEKInfo
	pub  *ecdsa.PublicKey
	// verifiedBy holds SHA-256 digests of intermediates whose signature
	// over this certificate has been checked.
	verifiedBy [][32]byte
}

// Verifier verifies snp evidence. It is safe for concurrent use.
type Verifier struct {
	now        func() time.Time
	roots      map[Product]*ProductCerts
	sources    []kds.Source
	crl        CRLGetter
	minVersion uint32
	maxVersion uint32
	maxCached  int
	log        *slog.Logger

	mu sync.Mutex
	// veks caches parsed VEKs by SHA-256 of their DER.
	veks map[[32]byte]*vekEntry
	// inters caches supplied intermediates already verified under a
	// trusted ARK, by SHA-256 of their DER.
	inters map[interKey]*x509.Certificate
	// crls caches CRLs whose signature was checked, by SHA-256 of the DER.
	crls map[[32]byte]*x509.RevocationList
}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a Verifier. It parses and checks every root bundle (ARK
// self-signed, ASK and ASVK signed by the ARK) once, so verification only
// checks the endorsement key's own signature.
func New(opts Options) (*Verifier, error) {
	v := &Verifier{
		now:        opts.Now,
		roots:      map[Product]*ProductCerts{},
		sources:    slices.Clone(opts.VCEKSources),
		crl:        opts.CRL,
		minVersion: opts.MinReportVersion,
		maxVersion: opts.MaxReportVersion,
		maxCached:  opts.MaxCachedVEKs,
		log:        opts.Logger,
		veks:       map[[32]byte]*vekEntry{},
		inters:     map[interKey]*x509.Certificate{},
		crls:       map[[32]byte]*x509.RevocationList{},
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.minVersion == 0 {
		v.minVersion = 3
	}
	if v.maxVersion == 0 {
		v.maxVersion = maxParsableVersion
	}
	if v.minVersion > v.maxVersion {
		return nil, fmt.Errorf("snp: MinReportVersion %d > MaxReportVersion %d", v.minVersion, v.maxVersion)
	}
	if v.maxCached <= 0 {
		v.maxCached = 1024
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	for p := range opts.Roots {
		if !slices.Contains(Products, p) {
			return nil, fmt.Errorf("%w: Roots[%q]", ErrUnknownProduct, p)
		}
	}
	for _, p := range Products {
		bundle, ok := opts.Roots[p]
		if !ok {
			var err error
			if bundle, err = DefaultRootBundle(p); err != nil {
				return nil, err
			}
		}
		pc, err := ParseRootBundle(bundle)
		if err != nil {
			return nil, fmt.Errorf("snp: %s roots: %w", p, err)
		}
		v.roots[p] = pc
	}
	return v, nil
}

// Verify implements verifier.Verifier for Trustee "snp" evidence.
func (v *Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	r := ev.Report
	if r.Version < v.minVersion {
		return nil, fmt.Errorf("%w: version %d < %d", ErrReportVersion, r.Version, v.minVersion)
	}
	if r.Version > v.maxVersion {
		return nil, fmt.Errorf("%w: version %d > %d", ErrReportVersionNew, r.Version, v.maxVersion)
	}
	crl, err := v.verifyParsed(ctx, r, ev.Certs)
	if err != nil {
		return nil, err
	}
	if err := CheckBinding(r, exp); err != nil {
		return nil, err
	}
	claims := r.Claims()
	claims["crl_status"] = crl.status
	if crl.reason != "" {
		claims["crl_status_reason"] = crl.reason
	}
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}

// crlResult is the outcome of the CRL check: the crl_status claim and,
// when the CRL was not cleanly checked, why.
type crlResult struct {
	status, reason string
}

// CheckBinding applies the rules Verify adds on top of VerifyReport: VMPL
// must be 0; REPORT_DATA must equal exp.ReportData regularised to 64
// bytes; HOST_DATA must equal exp.InitDataDigest regularised to 32 bytes.
// Nil expectations are not checked.
func CheckBinding(r *Report, exp verifier.Expected) error {
	if r.VMPL != 0 {
		return fmt.Errorf("%w: VMPL %d", ErrVMPL, r.VMPL)
	}
	if exp.ReportData != nil && !bytes.Equal(regularize(exp.ReportData, 64), r.ReportData[:]) {
		return ErrReportDataMismatch
	}
	if exp.InitDataDigest != nil && !bytes.Equal(regularize(exp.InitDataDigest, 32), r.HostData[:]) {
		return ErrHostDataMismatch
	}
	return nil
}

// regularize zero-pads or truncates b to n bytes.
func regularize(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// VerifyReport verifies a raw 1184-byte report (version 2 to 5) and its
// endorsement: signature, VCEK/VLEK chain to the AMD roots, validity
// times, optional CRL, REPORTED_TCB == VEK TCB and, for a VCEK, CHIP_ID ==
// hwID. It does not check VMPL, report data, host data or the report
// version policy; callers (e.g. the Azure vTPM verifier) apply their own,
// or CheckBinding. A CRL that cannot be obtained does not fail it (it is
// logged).
func (v *Verifier) VerifyReport(ctx context.Context, raw []byte, certs CertChain) (*Report, error) {
	r, err := ParseReport(raw)
	if err != nil {
		return nil, err
	}
	if _, err := v.verifyParsed(ctx, r, certs); err != nil {
		return nil, err
	}
	return r, nil
}

// VerifyReportCRL is VerifyReport that also returns the outcome of the
// revocation check: the crl_status claim value (CRLChecked, CRLUnavailable
// or CRLSkipped) and, when not cleanly checked, the reason.
func (v *Verifier) VerifyReportCRL(ctx context.Context, raw []byte, certs CertChain) (r *Report, crlStatus, crlReason string, err error) {
	r, err = ParseReport(raw)
	if err != nil {
		return nil, "", "", err
	}
	res, err := v.verifyParsed(ctx, r, certs)
	if err != nil {
		return nil, "", "", err
	}
	return r, res.status, res.reason, nil
}

func (v *Verifier) verifyParsed(ctx context.Context, r *Report, certs CertChain) (crlResult, error) {
	var none crlResult
	if r.SignatureAlgo != SignatureAlgoECDSAP384SHA384 {
		return none, fmt.Errorf("%w: %d", ErrSignatureAlgorithm, r.SignatureAlgo)
	}
	var kind KeyKind
	var vekDER []byte
	switch sk := r.SigningKey(); sk {
	case SigningKeyVCEK:
		kind, vekDER = KindVCEK, certs.VCEK
	case SigningKeyVLEK:
		kind, vekDER = KindVLEK, certs.VLEK
	default:
		return none, fmt.Errorf("%w: %s", ErrSigningKey, sk)
	}

	product, prodErr := r.Product()
	if prodErr != nil && r.Version >= 3 {
		return none, prodErr
	}
	if len(vekDER) == 0 {
		if kind == KindVLEK {
			return none, fmt.Errorf("%w: VLEK-signed report without a VLEK", ErrNoVEK)
		}
		if prodErr != nil {
			return none, fmt.Errorf("%w: cannot fetch a VCEK without knowing the product: %v", ErrNoVEK, prodErr)
		}
		var err error
		if vekDER, err = v.fetchVCEK(ctx, r, product); err != nil {
			return none, err
		}
	}

	vek, err := v.parseVEK(decodeCertBytes(vekDER))
	if err != nil {
		return none, err
	}
	if vek.info.Kind != kind {
		return none, fmt.Errorf("%w: report signed by %s but certificate is a %s", ErrNoVEK, kind, vek.info.Kind)
	}
	if prodErr != nil {
		// Version 2: the productName is the only hint (e.g. "Milan-B0").
		if product, err = vek.info.Product(); err != nil {
			return none, err
		}
	} else if vp, err := vek.info.Product(); err == nil && vp != product {
		return none, fmt.Errorf("%w: report is %s, %s is %s", ErrProductMismatch, product, kind, vp)
	}

	inter, err := v.verifyChain(vek, kind, product, certs)
	if err != nil {
		return none, err
	}
	if err := verifySignature(r, vek.pub); err != nil {
		return none, err
	}
	if err := checkTCB(r, vek.info, product); err != nil {
		return none, err
	}
	// Last, so that evidence failing the offline checks costs no fetch.
	if v.crl == nil {
		return crlResult{status: CRLSkipped}, nil
	}
	return v.checkCRL(ctx, product, v.roots[product].ARK, inter)
}

// fetchVCEK asks the configured sources in order.
func (v *Verifier) fetchVCEK(ctx context.Context, r *Report, product Product) ([]byte, error) {
	if len(v.sources) == 0 {
		return nil, fmt.Errorf("%w: evidence has no VCEK and no VCEK source is configured", ErrNoVEK)
	}
	t := r.ReportedTCB
	req := kds.VCEKRequest{
		Product: string(product),
		ChipID:  r.ChipID[:],
		TCB: kds.TCB{HasFMC: t.HasFMC, FMC: t.FMC, Bootloader: t.Bootloader,
			TEE: t.TEE, SNP: t.SNP, Microcode: t.Microcode},
	}
	var errs []error
	for _, s := range v.sources {
		der, err := s.VCEK(ctx, req)
		if err == nil {
			return der, nil
		}
		v.log.DebugContext(ctx, "VCEK source failed", "error", err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrVCEKSourcesNotFound, errors.Join(errs...))
}

func (v *Verifier) parseVEK(der []byte) (*vekEntry, error) {
	key := sha256.Sum256(der)
	v.mu.Lock()
	e, ok := v.veks[key]
	v.mu.Unlock()
	if ok {
		return e, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse endorsement key: %v", ErrCertChain, err)
	}
	info, err := ParseVEKExtensions(cert)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: endorsement key is not ECDSA P-384", ErrCertChain)
	}
	e = &vekEntry{cert: cert, info: info, pub: pub}
	v.mu.Lock()
	if len(v.veks) >= v.maxCached {
		clear(v.veks)
	}
	if prev, ok := v.veks[key]; ok {
		e = prev
	} else {
		v.veks[key] = e
	}
	v.mu.Unlock()
	return e, nil
}

// verifyChain checks VEK ← intermediate ← trusted ARK and validity at
// Now, and returns the intermediate. Signatures already checked are
// cached.
func (v *Verifier) verifyChain(vek *vekEntry, kind KeyKind, product Product, certs CertChain) (*x509.Certificate, error) {
	pc := v.roots[product]
	if pc == nil {
		return nil, fmt.Errorf("%w: no roots for %s", ErrUnknownProduct, product)
	}
	if len(certs.ARK) > 0 && !bytes.Equal(decodeCertBytes(certs.ARK), pc.ARK.Raw) {
		return nil, fmt.Errorf("%w (%s)", ErrUntrustedRoot, product)
	}
	inter := pc.ASK
	if kind == KindVLEK {
		inter = pc.ASVK
	}
	if len(certs.ASK) > 0 {
		supplied, err := v.suppliedIntermediate(decodeCertBytes(certs.ASK), pc.ARK)
		if err != nil {
			return nil, err
		}
		inter = supplied
	}

	now := v.now()
	for _, c := range []*x509.Certificate{vek.cert, inter, pc.ARK} {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: %q valid %s to %s", ErrCertExpired, c.Subject.CommonName,
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}

	interKey := sha256.Sum256(inter.Raw)
	v.mu.Lock()
	done := slices.Contains(vek.verifiedBy, interKey)
	v.mu.Unlock()
	if !done {
		if err := vek.cert.CheckSignatureFrom(inter); err != nil {
			return nil, fmt.Errorf("%w: %s not signed by %q: %v", ErrCertChain, kind, inter.Subject.CommonName, err)
		}
		v.mu.Lock()
		if !slices.Contains(vek.verifiedBy, interKey) {
			vek.verifiedBy = append(vek.verifiedBy, interKey)
		}
		v.mu.Unlock()
	}
	return inter, nil
}

// suppliedIntermediate returns an evidence-supplied ASK/ASVK once it is
// known to be signed by the trusted ARK.
func (v *Verifier) suppliedIntermediate(der []byte, ark *x509.Certificate) (*x509.Certificate, error) {
	key := interKey{der: sha256.Sum256(der), ark: ark}
	v.mu.Lock()
	c, ok := v.inters[key]
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse supplied ASK: %v", ErrCertChain, err)
	}
	if err := c.CheckSignatureFrom(ark); err != nil {
		return nil, fmt.Errorf("%w: supplied ASK not signed by %q: %v", ErrCertChain, ark.Subject.CommonName, err)
	}
	v.mu.Lock()
	if len(v.inters) >= v.maxCached {
		clear(v.inters)
	}
	v.inters[key] = c
	v.mu.Unlock()
	return c, nil
}

// checkCRL verifies the ARK-signed CRL and that the intermediate is not on
// it: a listed intermediate is ErrCertRevoked. A CRL that cannot be
// obtained or trusted yields CRLUnavailable with the reason, not an error
// (the policy decides); a canceled context is an error. VEKs are not
// looked up: AMD issues every VCEK with serial number 0, so a serial
// cannot identify a revoked VCEK.
func (v *Verifier) checkCRL(ctx context.Context, product Product, ark, inter *x509.Certificate) (crlResult, error) {
	unavailable := func(err error) (crlResult, error) {
		v.log.DebugContext(ctx, "AMD CRL unavailable; revocation of the intermediate not checked", "product", product, "error", err)
		return crlResult{status: CRLUnavailable, reason: err.Error()}, nil
	}
	der, err := v.crl.CRL(ctx, string(product))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return crlResult{}, ctxErr
		}
		return unavailable(fmt.Errorf("%w: %s: %w", ErrCRLUnavailable, product, err))
	}
	if len(der) == 0 {
		return unavailable(fmt.Errorf("%w: %s: no CRL available", ErrCRLUnavailable, product))
	}
	key := sha256.Sum256(der)
	v.mu.Lock()
	crl, ok := v.crls[key]
	v.mu.Unlock()
	if !ok {
		crl, err = x509.ParseRevocationList(decodeCRLBytes(der))
		if err != nil {
			return unavailable(fmt.Errorf("%w: %s: parse: %v", ErrCRLUnavailable, product, err))
		}
		if err := crl.CheckSignatureFrom(ark); err != nil {
			return unavailable(fmt.Errorf("%w: %s: not signed by %q: %v", ErrCRLUnavailable, product, ark.Subject.CommonName, err))
		}
		v.mu.Lock()
		if len(v.crls) >= 64 {
			clear(v.crls)
		}
		v.crls[key] = crl
		v.mu.Unlock()
	}
	for _, rc := range crl.RevokedCertificateEntries {
		if rc.SerialNumber.Cmp(inter.SerialNumber) == 0 {
			return crlResult{}, fmt.Errorf("%w: %q (serial %s) is on the %s ARK's CRL", ErrCertRevoked, inter.Subject.CommonName, inter.SerialNumber, product)
		}
	}
	res := crlResult{status: CRLChecked}
	if now := v.now(); !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		v.log.WarnContext(ctx, "AMD CRL is past its next update", "product", product, "next_update", crl.NextUpdate)
		res.reason = "CRL past its next update " + crl.NextUpdate.UTC().Format(time.RFC3339)
	}
	return res, nil
}

// verifySignature checks the ECDSA P-384 signature over bytes 0x000–0x29F.
func verifySignature(r *Report, pub *ecdsa.PublicKey) error {
	digest := sha512.Sum384(r.raw[:SignedSize])
	rr := leInt(r.Signature.R[:])
	ss := leInt(r.Signature.S[:])
	if !ecdsa.Verify(pub, digest[:], rr, ss) {
		return ErrSignature
	}
	return nil
}

// leInt decodes a little-endian unsigned integer.
func leInt(le []byte) *big.Int {
	be := make([]byte, len(le))
	for i, b := range le {
		be[len(le)-1-i] = b
	}
	return new(big.Int).SetBytes(be)
}

// checkTCB compares REPORTED_TCB with the VEK SPLs and CHIP_ID with hwID.
func checkTCB(r *Report, info *VEKInfo, product Product) error {
	got, want := r.ReportedTCB, info.TCB
	switch {
	case got.Microcode != want.Microcode:
		return fmt.Errorf("%w: microcode %d, certificate %d", ErrTCBMismatch, got.Microcode, want.Microcode)
	case got.SNP != want.SNP:
		return fmt.Errorf("%w: snp %d, certificate %d", ErrTCBMismatch, got.SNP, want.SNP)
	case got.TEE != want.TEE:
		return fmt.Errorf("%w: tee %d, certificate %d", ErrTCBMismatch, got.TEE, want.TEE)
	case got.Bootloader != want.Bootloader:
		return fmt.Errorf("%w: bootloader %d, certificate %d", ErrTCBMismatch, got.Bootloader, want.Bootloader)
	}
	if product == Turin {
		if !want.HasFMC {
			return fmt.Errorf("%w: Turin certificate without fmcSPL", ErrTCBMismatch)
		}
		if got.FMC != want.FMC {
			return fmt.Errorf("%w: fmc %d, certificate %d", ErrTCBMismatch, got.FMC, want.FMC)
		}
	}
	if info.Kind == KindVCEK {
		// Turin VCEKs may carry the 8-byte hwID the KDS URL uses.
		if !bytes.Equal(info.HWID, r.ChipID[:len(info.HWID)]) {
			return ErrChipIDMismatch
		}
	}
	return nil
}

// decodeCRLBytes accepts DER or PEM ("X509 CRL").
func decodeCRLBytes(b []byte) []byte {
	if block, _ := pem.Decode(b); block != nil && block.Type == "X509 CRL" {
		return block.Bytes
	}
	return b
}
