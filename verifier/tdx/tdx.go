// Package tdx verifies Intel TDX evidence: a DCAP TD quote (version 4 or 5)
// and an optional CC event log (CCEL), and turns them into the claims
// Trustee's TDX verifier emits (tee "tdx", class "cpu").
//
// Evidence: {"quote":"<std base64>","cc_eventlog":"<std base64>"|null}; a
// legacy "aa_eventlog" member and other unknown members are ignored.
//
// Verification (genuineness) covers: the quote's ECDSA-P256 signature by the
// attestation key over header ‖ [v5 body descriptor] ‖ body; the QE report's
// signature by the PCK leaf key; the QE report data binding
// (SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes); the PCK
// certificate chain up to a pinned Intel SGX Root CA at an injected time,
// with an optional revocation hook; the report-data and MRCONFIGID
// bindings; and, when an event log is present, its replay against RTMR0-3.
//
// Appraisal inputs (TCB status, advisories, collateral expiry) come from an
// optional pcs.Evaluator and become claims; the policy decides.
//
// Claims: the parsed quote exactly as Trustee emits it (see BuildClaims),
// the supplemental claims Trustee takes from Intel's QVL that derive from the
// PCK certificate (platform_provider_id, sgx_type, is_dynamic_platform,
// is_cached_keys, is_smt_enabled, root_key_id) and from the collateral
// (pcs.TCBResult.Claims: tcb_status, tcb_date, advisory_ids,
// collateral_expiration_status, earliest/latest issue and expiration dates,
// tcb_eval_num, pck_crl_num, root_ca_crl_num).
//
// Differences from Trustee, on purpose:
//   - tcb_status may be "Unknown" (no evaluator configured, or Offline with
//     collateral unavailable); a tcb_status_reason claim then explains why.
//     tcb_status_reason also carries the evaluator's notes (expired or stale
//     collateral) when there are any.
//   - The QE report must come from Intel's TD QE (MRSIGNER, ISVPRODID 2,
//     production mode) even without collateral.
//   - Bytes after the declared signature data must be zero padding.
package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"time"

	"github.com/sigil-attestation/sigil/internal/fifo"

	_ "embed"

	"github.com/sigil-attestation/sigil/eventlog"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/tdx/pcs"
)

// Class is the class of the result Verify returns.
const Class = "cpu"

// IntelSGXRootCAFingerprint is the SHA-256 of the DER of the Intel SGX Root
// CA certificate embedded as the default trust anchor.
const IntelSGXRootCAFingerprint = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

//go:embed intel_sgx_root_ca.pem
var intelSGXRootCAPEM []byte

// Errors returned (wrapped) by this package; test them with errors.Is.
var (
	// ErrEvidence: the evidence JSON or its base64 members are malformed.
	ErrEvidence = errors.New("tdx: malformed evidence")
	// ErrMalformedQuote: the quote bytes are truncated or inconsistent.
	ErrMalformedQuote = errors.New("tdx: malformed quote")
	// ErrUnsupportedQuote: a well-formed quote of a kind this verifier does
	// not handle (version, tee type, key type, certification data type).
	ErrUnsupportedQuote = errors.New("tdx: unsupported quote")
	// ErrQuoteSignature: the attestation key did not sign the quote.
	ErrQuoteSignature = errors.New("tdx: quote signature invalid")
	// ErrQEReportSignature: the PCK key did not sign the QE report.
	ErrQEReportSignature = errors.New("tdx: QE report signature invalid")
	// ErrQEReportData: the QE report does not bind the attestation key.
	ErrQEReportData = errors.New("tdx: QE report data does not bind the attestation key")
	// ErrQEIdentity: the QE report is not from Intel's TD quoting enclave
	// (MRSIGNER, ISVPRODID 2, production mode).
	ErrQEIdentity = errors.New("tdx: QE is not Intel's TD quoting enclave")
	// ErrPCKChain: the PCK certificate chain is malformed or does not
	// verify to a trusted root at the verification time.
	ErrPCKChain = errors.New("tdx: PCK certificate chain invalid")
	// ErrPCKExtension: the PCK leaf's SGX extension is missing or malformed.
	ErrPCKExtension = errors.New("tdx: PCK SGX extension invalid")
	// ErrRevoked: a certificate of the PCK chain is revoked, or the TCB
	// evaluation reported the platform as Revoked.
	ErrRevoked = errors.New("tdx: revoked")
	// ErrReportDataMismatch: REPORTDATA differs from the expected value.
	ErrReportDataMismatch = errors.New("tdx: REPORT_DATA is different from that in TDX quote")
	// ErrInitDataMismatch: MRCONFIGID differs from the expected init-data
	// digest.
	ErrInitDataMismatch = errors.New("tdx: MRCONFIGID is different from that in TDX quote")
	// ErrEventLog: the CC event log is malformed or does not replay to the
	// quote's RTMRs.
	ErrEventLog = errors.New("tdx: event log integrity check failed")
	// ErrTCB: TCB collateral could not be evaluated (and Offline is false),
	// or the evaluation failed.
	ErrTCB = errors.New("tdx: TCB evaluation failed")
)

// RevocationChecker checks the certificates of a verified PCK chain (leaf
// first, trusted root last) against revocation lists. It is called on every
// verification, also when the chain itself comes from the cache; an
// implementation should cache its CRLs.
type RevocationChecker interface {
	CheckRevocation(ctx context.Context, chain []*x509.Certificate) error
}

// Options configures a Verifier. The zero value is usable: embedded Intel
// root, wall clock, no collateral (tcb_status "Unknown").
type Options struct {
	// Now returns the time at which the PCK certificate chain must be
	// valid. Nil means time.Now.
	Now func() time.Time
	// TrustedRoots are the root certificates a PCK chain may end at. Nil or
	// empty means the embedded Intel SGX Root CA (SHA-256
	// IntelSGXRootCAFingerprint). The root a quote carries in its chain is
	// never trusted: a self-signed certificate in the quote's chain must
	// be one of these (same bytes, or same subject and public key), and
	// the verified chain must end at one of them.
	TrustedRoots []*x509.Certificate
	// TCB evaluates the platform's TCB against Intel collateral. Nil means
	// no evaluation: claims carry tcb_status "Unknown" with a reason.
	TCB pcs.Evaluator
	// Offline, when the evaluator reports collateral unavailable, yields
	// tcb_status "Unknown" (with the reason) instead of failing the
	// verification (Trustee fails).
	Offline bool
	// QEMRSigner is the MRSIGNER the quoting enclave must have. Nil means
	// Intel's TD QE signer (IntelTDQEMRSigner). The QE must also have
	// ISVPRODID 2 (TD QE) and not be a debug enclave; the evaluator checks
	// the full QE identity (and its TCB) against Intel's collateral.
	QEMRSigner []byte
	// Revocation, when set, is consulted for every verified PCK chain.
	Revocation RevocationChecker
	// ChainCacheSize bounds the number of verified PCK chains kept (keyed by
	// the chain's bytes). 0 means 64; a negative value disables caching.
	ChainCacheSize int
	// Logger receives debug and warning logs. Nil means slog.Default().
	Logger *slog.Logger
}

// IntelTDQEMRSigner is the MRSIGNER of Intel's TD quoting enclave (Intel PCS
// TD_QE identity).
const IntelTDQEMRSigner = "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5"

// tdQEProdID is the ISVPRODID of Intel's TD quoting enclave.
const tdQEProdID = 2

// Verifier verifies TDX evidence. It is safe for concurrent use.
type Verifier struct {
	qeMRSigner []byte
	now        func() time.Time
	roots      *x509.CertPool
	pinned     []*x509.Certificate
	tcb        pcs.Evaluator
	offline    bool
	revocation RevocationChecker
	log        *slog.Logger
	cache      *fifo.Cache[[32]byte, *verifiedChain]
}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a Verifier configured by opts.
func New(opts Options) (*Verifier, error) {
	v := &Verifier{
		now:        opts.Now,
		tcb:        opts.TCB,
		offline:    opts.Offline,
		revocation: opts.Revocation,
		log:        opts.Logger,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	v.qeMRSigner = opts.QEMRSigner
	if v.qeMRSigner == nil {
		v.qeMRSigner, _ = hex.DecodeString(IntelTDQEMRSigner)
	}
	if len(v.qeMRSigner) != 32 {
		return nil, fmt.Errorf("tdx: QEMRSigner has %d bytes, want 32", len(v.qeMRSigner))
	}
	roots := opts.TrustedRoots
	if len(roots) == 0 {
		root, err := DefaultRoot()
		if err != nil {
			return nil, err
		}
		roots = []*x509.Certificate{root}
	}
	v.roots = x509.NewCertPool()
	for _, r := range roots {
		if r == nil {
			return nil, errors.New("tdx: nil trusted root")
		}
		v.roots.AddCert(r)
		v.pinned = append(v.pinned, r)
	}
	size := opts.ChainCacheSize
	if size == 0 {
		size = 64
	}
	v.cache = fifo.New[[32]byte, *verifiedChain](size) // nil (no cache) when negative
	return v, nil
}

// DefaultRoot returns the embedded Intel SGX Root CA certificate after
// checking its pinned SHA-256 fingerprint.
func DefaultRoot() (*x509.Certificate, error) {
	blk, _ := pem.Decode(intelSGXRootCAPEM)
	if blk == nil {
		return nil, errors.New("tdx: embedded Intel SGX root: no PEM block")
	}
	sum := sha256.Sum256(blk.Bytes)
	if hex.EncodeToString(sum[:]) != IntelSGXRootCAFingerprint {
		return nil, errors.New("tdx: embedded Intel SGX root: fingerprint mismatch")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Evidence is decoded TDX evidence.
type Evidence struct {
	// Quote is the raw DCAP quote.
	Quote []byte
	// CCEventLog is the raw CC event log, nil when absent, null or "".
	CCEventLog []byte
}

// ParseEvidence decodes {"quote": b64, "cc_eventlog": b64|null}. Standard
// base64 with padding, as Trustee decodes it. Unknown members (such as the
// legacy "aa_eventlog") are ignored.
func ParseEvidence(evidence []byte) (*Evidence, error) {
	var raw struct {
		Quote      *string `json:"quote"`
		CCEventLog *string `json:"cc_eventlog"`
	}
	if err := json.Unmarshal(evidence, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEvidence, err)
	}
	if raw.Quote == nil || *raw.Quote == "" {
		return nil, fmt.Errorf("%w: quote is missing or empty", ErrEvidence)
	}
	ev := &Evidence{}
	var err error
	if ev.Quote, err = base64.StdEncoding.DecodeString(*raw.Quote); err != nil {
		return nil, fmt.Errorf("%w: quote: %v", ErrEvidence, err)
	}
	if raw.CCEventLog != nil && *raw.CCEventLog != "" {
		if ev.CCEventLog, err = base64.StdEncoding.DecodeString(*raw.CCEventLog); err != nil {
			return nil, fmt.Errorf("%w: cc_eventlog: %v", ErrEvidence, err)
		}
	}
	return ev, nil
}

// VerifiedQuote is a quote whose signatures and PCK chain verified.
type VerifiedQuote struct {
	Quote *Quote
	// PCK is the decoded SGX extension of the PCK leaf certificate.
	PCK *PCKExtensions
	// Chain is the verified chain, leaf first, trusted root last.
	Chain []*x509.Certificate
}

// Verify implements verifier.Verifier.
func (v *Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	vq, err := v.VerifyQuote(ctx, ev.Quote)
	if err != nil {
		return nil, err
	}
	q := vq.Quote
	if err := CheckBinding(q, exp); err != nil {
		return nil, err
	}
	var log *eventlog.Log
	if ev.CCEventLog != nil {
		if log, err = VerifyEventLog(q, ev.CCEventLog); err != nil {
			return nil, err
		}
	} else {
		v.log.DebugContext(ctx, "tdx: no event log in the evidence")
	}
	tcb, err := v.evaluateTCB(ctx, vq)
	if err != nil {
		return nil, err
	}
	claims := BuildClaims(q, vq.PCK, log)
	maps.Copy(claims, pckClaims(vq))
	maps.Copy(claims, tcb)
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}

// CheckBinding checks exp against the quote: exp.ReportData right-padded
// with zeros or truncated to 64 bytes must equal REPORTDATA, and
// exp.InitDataDigest regularised to 48 bytes must equal MRCONFIGID. Nil
// fields are not checked.
func CheckBinding(q *Quote, exp verifier.Expected) error {
	if exp.ReportData != nil && !bytes.Equal(regularize(exp.ReportData, 64), q.Body.ReportData[:]) {
		return ErrReportDataMismatch
	}
	if exp.InitDataDigest != nil && !bytes.Equal(regularize(exp.InitDataDigest, 48), q.Body.MRConfigID[:]) {
		return ErrInitDataMismatch
	}
	return nil
}

func regularize(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// VerifyEventLog parses a CC event log and requires its replay to equal the
// quote's RTMR0-3 (an RTMR without events must be zero).
func VerifyEventLog(q *Quote, data []byte) (*eventlog.Log, error) {
	log, err := eventlog.ParseCCEL(data)
	if err != nil {
		return nil, fmt.Errorf("%w: parse CC event log: %w", ErrEventLog, err)
	}
	var rtmrs [4][]byte
	for i := range rtmrs {
		rtmrs[i] = q.Body.RTMR[i][:]
	}
	if err := log.VerifyRTMRs(rtmrs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEventLog, err)
	}
	return log, nil
}

// VerifyQuote parses raw and verifies it is a genuine TD quote: the PCK
// chain to a trusted root at Options.Now (plus the revocation hook), the QE
// report signature, the QE identity (MRSIGNER, ISVPRODID, not debug), the
// QE report data binding and the quote signature.
func (v *Verifier) VerifyQuote(ctx context.Context, raw []byte) (*VerifiedQuote, error) {
	q, err := ParseQuote(raw)
	if err != nil {
		return nil, err
	}
	pck, err := v.verifyChain(ctx, q.PCKChainPEM)
	if err != nil {
		return nil, err
	}
	if !verifyRawSig(pck.key, q.QEReportRaw[:], q.QEReportSignature[:]) {
		return nil, ErrQEReportSignature
	}
	if err := v.checkQEIdentity(&q.QEReport); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(q.AttestationKey[:])
	h.Write(q.QEAuthData)
	want := h.Sum(make([]byte, 0, 64))
	want = append(want, make([]byte, 32)...)
	if !bytes.Equal(want, q.QEReport.ReportData[:]) {
		return nil, ErrQEReportData
	}
	attKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, q.AttestationKey[:]...))
	if err != nil {
		return nil, fmt.Errorf("%w: attestation key: %v", ErrQuoteSignature, err)
	}
	if !verifyRawSig(attKey, q.SignedData, q.Signature[:]) {
		return nil, ErrQuoteSignature
	}
	return &VerifiedQuote{Quote: q, PCK: pck.ext, Chain: pck.chain}, nil
}

// checkQEIdentity checks the static part of Intel's TD QE identity.
func (v *Verifier) checkQEIdentity(r *EnclaveReport) error {
	switch {
	case !bytes.Equal(r.MRSigner[:], v.qeMRSigner):
		return fmt.Errorf("%w: MRSIGNER %x", ErrQEIdentity, r.MRSigner)
	case r.ISVProdID != tdQEProdID:
		return fmt.Errorf("%w: ISVPRODID %d", ErrQEIdentity, r.ISVProdID)
	case r.Attributes[0]&0x02 != 0:
		return fmt.Errorf("%w: debug enclave", ErrQEIdentity)
	}
	return nil
}

// verifyRawSig checks a raw r‖s ECDSA signature over SHA-256(msg).
func verifyRawSig(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	return ecdsa.Verify(pub, digest[:], r, s)
}

// verifiedChain is a cached result of verifying one PCK chain.
type verifiedChain struct {
	chain []*x509.Certificate
	key   *ecdsa.PublicKey
	ext   *PCKExtensions
	// notBefore/notAfter bound the time at which every certificate of the
	// verified chain is valid.
	notBefore, notAfter time.Time
}

func (v *Verifier) verifyChain(ctx context.Context, chainPEM []byte) (*verifiedChain, error) {
	now := v.now()
	key := sha256.Sum256(chainPEM)
	vc, _ := v.cache.Get(key)
	if vc == nil {
		var err error
		if vc, err = v.buildChain(chainPEM, now); err != nil {
			return nil, err
		}
		v.cache.Put(key, vc)
	} else if now.Before(vc.notBefore) || now.After(vc.notAfter) {
		return nil, fmt.Errorf("%w: certificate not valid at %s (chain valid %s to %s)", ErrPCKChain,
			now.UTC().Format(time.RFC3339), vc.notBefore.UTC().Format(time.RFC3339), vc.notAfter.UTC().Format(time.RFC3339))
	}
	if v.revocation != nil {
		if err := v.revocation.CheckRevocation(ctx, vc.chain); err != nil {
			return nil, fmt.Errorf("%w: PCK chain: %w", ErrRevoked, err)
		}
	}
	return vc, nil
}

// buildChain parses the PEM chain (leaf first), verifies it to the trusted
// roots at now and decodes the leaf's SGX extension.
func (v *Verifier) buildChain(chainPEM []byte, now time.Time) (*verifiedChain, error) {
	var certs []*x509.Certificate
	rest := chainPEM
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected PEM block %q", ErrPCKChain, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPCKChain, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.Trim(rest, "\x00\r\n\t ")) != 0 {
		return nil, fmt.Errorf("%w: trailing data after the PEM certificates", ErrPCKChain)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrPCKChain)
	}
	// The quote carries its own copy of the root; it is never trusted. A
	// self-signed certificate supplied by the quote must be one of the
	// pinned roots, and it never enters the intermediates pool: the chain
	// can only end at a pinned root.
	inter := x509.NewCertPool()
	for i, c := range certs[1:] {
		if !selfSigned(c) {
			inter.AddCert(c)
			continue
		}
		if !v.isPinned(c) {
			sum := sha256.Sum256(c.Raw)
			return nil, fmt.Errorf("%w: certificate %d of the quote's chain is a self-signed root %q (SHA-256 %x) that is not a pinned Intel SGX root",
				ErrPCKChain, i+1, c.Subject.String(), sum)
		}
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPCKChain, err)
	}
	var chain []*x509.Certificate
	for _, c := range chains {
		if len(c) >= 2 && v.isPinned(c[len(c)-1]) {
			chain = c
			break
		}
	}
	if chain == nil {
		return nil, fmt.Errorf("%w: no verified chain ends at a pinned Intel SGX root", ErrPCKChain)
	}
	leafKey, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || leafKey.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: PCK leaf key is not ECDSA P-256", ErrPCKChain)
	}
	ext, err := ParsePCKExtensions(certs[0])
	if err != nil {
		return nil, err
	}
	vc := &verifiedChain{chain: chain, key: leafKey, ext: ext}
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(vc.notBefore) {
			vc.notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(vc.notAfter) {
			vc.notAfter = c.NotAfter
		}
	}
	return vc, nil
}

// selfSigned reports whether c names itself as issuer and its own key
// verifies its signature (a root certificate).
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// isPinned reports whether c is one of the configured trusted roots: the
// same bytes, or the same subject and public key (a re-issued root).
func (v *Verifier) isPinned(c *x509.Certificate) bool {
	for _, r := range v.pinned {
		if bytes.Equal(r.Raw, c.Raw) {
			return true
		}
		if bytes.Equal(r.RawSubject, c.RawSubject) && bytes.Equal(r.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}

// rootKeyID is SHA-384 of the trusted root's uncompressed public key, as
// Intel's QVL reports root_key_id.
func rootKeyID(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return ""
	}
	pub, ok := chain[len(chain)-1].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ""
	}
	raw, err := pub.Bytes()
	if err != nil {
		return ""
	}
	sum := sha512.Sum384(raw)
	return hex.EncodeToString(sum[:])
}
