package pcs

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrCollateralUnavailable: no PCS/PCCS answered (or it answered with
	// an error status) and nothing usable was cached or stored offline.
	ErrCollateralUnavailable = errors.New("pcs: TCB collateral unavailable")
	// ErrInvalidCollateral: a collateral document is malformed.
	ErrInvalidCollateral = errors.New("pcs: invalid collateral")
	// ErrSignature: a collateral signature does not verify.
	ErrSignature = errors.New("pcs: collateral signature invalid")
	// ErrSigningChain: the issuer chain is missing, malformed, expired at
	// the certificate clock, or does not lead to a trusted root.
	ErrSigningChain = errors.New("pcs: collateral signing chain invalid")
	// ErrFMSPCMismatch: the TCB Info is for another FMSPC.
	ErrFMSPCMismatch = errors.New("pcs: FMSPC mismatch")
	// ErrPCEIDMismatch: the TCB Info is for another PCEID.
	ErrPCEIDMismatch = errors.New("pcs: PCEID mismatch")
	// ErrQEIdentityMismatch: the QE report is not Intel's TD quoting enclave
	// (mrsigner, isvprodid, miscselect or attributes differ).
	ErrQEIdentityMismatch = errors.New("pcs: QE identity mismatch")
	// ErrTDXModuleMismatch: MRSIGNERSEAM/SEAMATTRIBUTES differ from the TDX
	// module identity.
	ErrTDXModuleMismatch = errors.New("pcs: TDX module identity mismatch")
	// ErrRevoked: the PCK certificate or its CA is on an Intel CRL.
	ErrRevoked = errors.New("pcs: certificate revoked")
	// ErrInvalidPlatform: PlatformTCB is malformed (e.g. FMSPC not 6 bytes).
	ErrInvalidPlatform = errors.New("pcs: invalid platform TCB input")
)

// DefaultBaseURL is Intel's production PCS.
const DefaultBaseURL = "https://api.trustedservices.intel.com"

// IntelRootCAFingerprint is the SHA-256 of the DER "Intel SGX Root CA"
// certificate that collateral must chain to by default.
const IntelRootCAFingerprint = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// defaultRootCRLURL is the Root CA CRL distribution point Intel publishes.
const defaultRootCRLURL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// PlatformTCB is what the quote verifier extracted from a verified quote and
// its PCK certificate.
type PlatformTCB struct {
	FMSPC, PCEID []byte   // from the PCK certificate (6 and 2 bytes)
	PCESVN       uint16   // PCK certificate
	CPUSVN       [16]byte // PCK certificate SGX TCB component SVNs 1..16
	TeeTCBSVN    [16]byte // TD report tee_tcb_svn
	QEISVSVN     uint16   // QE report
	QEMRSIGNER   [32]byte // QE report
	QEISVPRODID  uint16   // QE report
	// QEMiscSelect holds the 4 MISCSELECT bytes as they appear in the QE
	// report (little-endian).
	QEMiscSelect [4]byte
	QEAttributes [16]byte // QE report attributes, as in the report

	// Optional inputs (zero values skip the check).

	// MRSignerSeam (48 bytes) and SeamAttributes (8 bytes) from the TD
	// report are compared with the TDX module identity when set.
	MRSignerSeam   []byte
	SeamAttributes []byte
	// PCKChain is the quote's PCK chain, already verified by the caller,
	// leaf first (PCK leaf, PCK Platform/Processor CA[, root]). When set,
	// the PCK CRL and Root CA CRL are fetched and checked (ErrRevoked), and
	// the chain's dates enter the earliest/latest date claims.
	PCKChain []*x509.Certificate
}

// TCBResult is the TCB appraisal of one platform.
type TCBResult struct {
	// Status is the combined status: UpToDate, SWHardeningNeeded,
	// ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate,
	// OutOfDateConfigurationNeeded, Revoked or Unknown (no level matched).
	Status string
	// TCBDate is the matched platform level's tcbDate (RFC 3339, QVL's
	// tcb_level_date_tag); empty when no level matched.
	TCBDate string
	// AdvisoryIDs are the advisories of the matched platform, module and QE
	// levels (deduplicated, in that order).
	AdvisoryIDs []string
	// CollateralExpired is set when a collateral document (TCB Info, QE
	// identity, CRLs) is outside its issueDate…nextUpdate window at the
	// collateral clock, or when stale cached collateral had to be served.
	CollateralExpired bool
	// Reason explains Unknown statuses, expiry and stale data.
	Reason string
	// PlatformStatus is the matched tcbLevels status; ModuleStatus the TDX
	// module identity level status (equal to PlatformStatus when the module
	// is covered by the platform level: TCB Info v2 or tee_tcb_svn[1] == 0);
	// QEStatus the QE identity level status (Revoked below every level).
	PlatformStatus, ModuleStatus, QEStatus string
	// TCBEvaluationDataNumber is min(tcbInfo, QE identity) numbers, as
	// QVL's tcb_eval_ref_num.
	TCBEvaluationDataNumber int

	PlatformTCBDate, ModuleTCBDate, QETCBDate string
	// ModuleIdentityID is the TDX module identity used ("TDX_03"), if any.
	ModuleIdentityID string
	// FMSPC is the TCB Info FMSPC (upper-case hex).
	FMSPC                                                       string
	TCBInfoEvaluationDataNumber, QEIdentityEvaluationDataNumber int
	TCBInfoIssueDate, TCBInfoNextUpdate                         time.Time
	QEIdentityIssueDate, QEIdentityNextUpdate                   time.Time
	// EarliestIssueDate, LatestIssueDate and EarliestExpirationDate span
	// every collateral item used: both documents, their signing chains,
	// the CRLs and the PCK chain (when given).
	EarliestIssueDate, LatestIssueDate, EarliestExpirationDate time.Time
	// CRLChecked is set when PCKChain was given and both CRLs were checked;
	// the CRL numbers are 0 otherwise.
	CRLChecked              bool
	PCKCRLNum, RootCACRLNum int
	// RootKeyID is hex SHA-384 of the trusted root's public key point, as
	// QVL's root_key_id.
	RootKeyID string
	// Stale is set when cached collateral past its refresh time was served
	// because refreshing failed.
	Stale bool
}

// Claims returns Trustee's DCAP supplemental claims derived from the
// collateral (tcb_status, tcb_date, advisory_ids,
// collateral_expiration_status, earliest/latest issue and expiration dates,
// tcb_eval_num, pck_crl_num, root_ca_crl_num, root_key_id). Numbers are
// float64, strings and dates RFC 3339, as JSON decoding would produce.
func (r *TCBResult) Claims() map[string]any {
	adv := make([]any, 0, len(r.AdvisoryIDs))
	for _, a := range r.AdvisoryIDs {
		adv = append(adv, a)
	}
	exp := "0"
	if r.CollateralExpired {
		exp = "1"
	}
	return map[string]any{
		"tcb_status":                   r.Status,
		"tcb_date":                     r.TCBDate,
		"advisory_ids":                 adv,
		"collateral_expiration_status": exp,
		"earliest_issue_date":          rfc3339(r.EarliestIssueDate),
		"latest_issue_date":            rfc3339(r.LatestIssueDate),
		"earliest_expiration_date":     rfc3339(r.EarliestExpirationDate),
		"tcb_eval_num":                 float64(r.TCBEvaluationDataNumber),
		"pck_crl_num":                  float64(r.PCKCRLNum),
		"root_ca_crl_num":              float64(r.RootCACRLNum),
		"root_key_id":                  r.RootKeyID,
	}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Evaluator is what the TDX quote verifier depends on.
type Evaluator interface {
	Evaluate(ctx context.Context, p PlatformTCB) (*TCBResult, error)
}

// Options configures a Client. Every field is optional.
type Options struct {
	// BaseURL is the collateral service: Intel PCS (default
	// DefaultBaseURL), a PCCS (e.g. https://pccs.example:8081; a trailing
	// /sgx/certification/v4 or /tdx/certification/v4 is stripped), or
	// file://PATH for offline operation (Trustee's
	// dcap_verifier.collateral_service). PATH is either a directory in the
	// layout documented in the package comment, or a JSON file written by
	// Intel's PCS client tool ({"collaterals":{…}}).
	BaseURL string
	// OfflineDir is an air-gapped collateral directory (or PCS client tool
	// JSON file). With BaseURL empty it is the only source; with BaseURL
	// set it is the fallback when the service fails, before stale cache.
	OfflineDir string
	// TCBUpdateType is "early" (default) or "standard": the PCS "update"
	// query parameter, and which offline files are preferred.
	TCBUpdateType string
	// HTTPClient performs PCS requests (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// Now is the collateral clock: issueDate/nextUpdate of TCB Info, QE
	// identity and CRLs, and cache freshness (default time.Now).
	Now func() time.Time
	// CertNow is the clock for the collateral signing chains (default Now).
	// Intel's TCB Signing certificate can be expired before collateral it
	// verifies was issued, so the two clocks are separate.
	CertNow func() time.Time
	// Roots are the trusted roots (default: the embedded Intel SGX Root CA,
	// pinned by IntelRootCAFingerprint).
	Roots []*x509.Certificate
	// MaxCacheAge bounds how long a document is reused before refetching
	// even if its nextUpdate is later (0: until nextUpdate).
	MaxCacheAge time.Duration
	// RetryInterval is the minimum delay between refresh attempts of an
	// expired document, and after a failed refresh while stale data is
	// served (default 1 minute).
	RetryInterval time.Duration
	// FetchTimeout bounds one fetch, independent of callers' contexts,
	// because concurrent callers share it (default 30 s).
	FetchTimeout time.Duration
	// Logger receives debug/warn logs (default slog.Default()).
	Logger *slog.Logger
}

// Client fetches, verifies and caches Intel TDX collateral and evaluates
// platform TCBs. It is safe for concurrent use.
type Client struct {
	base      *url.URL // nil: no online service
	isPCS     bool
	offline   string // "" if none
	update    string
	hc        *http.Client
	now       func() time.Time
	certNow   func() time.Time
	roots     *x509.CertPool
	root      *x509.Certificate
	rootKeyID string
	maxAge    time.Duration
	retry     time.Duration
	timeout   time.Duration
	log       *slog.Logger
	cache     *collateralCache
}

var _ Evaluator = (*Client)(nil)

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	c := &Client{
		update:  strings.ToLower(opts.TCBUpdateType),
		hc:      opts.HTTPClient,
		now:     opts.Now,
		certNow: opts.CertNow,
		maxAge:  opts.MaxCacheAge,
		retry:   opts.RetryInterval,
		timeout: opts.FetchTimeout,
		log:     opts.Logger,
		cache:   newCache(),
	}
	switch c.update {
	case "":
		c.update = "early"
	case "early", "standard":
	default:
		return nil, fmt.Errorf("pcs: TCBUpdateType %q: want early or standard", opts.TCBUpdateType)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.certNow == nil {
		c.certNow = c.now
	}
	if c.retry <= 0 {
		c.retry = time.Minute
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.offline = opts.OfflineDir
	base := opts.BaseURL
	if base == "" && c.offline == "" {
		base = DefaultBaseURL
	}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("pcs: BaseURL: %w", err)
		}
		switch u.Scheme {
		case "file":
			p := u.Path
			if p == "" {
				p = u.Opaque
			}
			if p == "" {
				return nil, fmt.Errorf("pcs: BaseURL %q has no path", base)
			}
			if c.offline != "" && c.offline != p {
				return nil, fmt.Errorf("pcs: BaseURL file:// and OfflineDir disagree")
			}
			c.offline = p
		case "http", "https":
			u.Path = strings.TrimRight(u.Path, "/")
			for _, suf := range []string{"/sgx/certification/v4", "/tdx/certification/v4"} {
				u.Path = strings.TrimSuffix(u.Path, suf)
			}
			u.RawQuery, u.Fragment, u.RawPath = "", "", ""
			c.base = u
			c.isPCS = strings.EqualFold(u.Hostname(), "api.trustedservices.intel.com")
		default:
			return nil, fmt.Errorf("pcs: BaseURL scheme %q not supported", u.Scheme)
		}
	}
	roots := opts.Roots
	if len(roots) == 0 {
		b, _ := pem.Decode(intelRootPEM)
		if b == nil {
			return nil, errors.New("pcs: embedded root is not PEM")
		}
		sum := sha256.Sum256(b.Bytes)
		if hex.EncodeToString(sum[:]) != IntelRootCAFingerprint {
			return nil, errors.New("pcs: embedded root fingerprint mismatch")
		}
		r, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pcs: embedded root: %w", err)
		}
		roots = []*x509.Certificate{r}
	}
	c.roots = x509.NewCertPool()
	for _, r := range roots {
		c.roots.AddCert(r)
	}
	c.root = roots[0]
	c.rootKeyID = rootKeyID(c.root)
	return c, nil
}

// rootKeyID is SHA-384 of the uncompressed EC point 0x04‖X‖Y (QVL's
// root_key_id); empty for non-EC roots.
func rootKeyID(root *x509.Certificate) string {
	pub, ok := root.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ""
	}
	k, err := pub.ECDH()
	if err != nil {
		return ""
	}
	sum := sha512.Sum384(k.Bytes())
	return hex.EncodeToString(sum[:])
}

// Purge drops all cached collateral.
func (c *Client) Purge() { c.cache.purge() }

// Evaluate fetches (or reuses) the TCB Info for p.FMSPC and the TD QE
// identity, verifies them and evaluates p. Verification failures are
// errors; TCB findings (including Unknown and expired collateral) are in
// the result.
func (c *Client) Evaluate(ctx context.Context, p PlatformTCB) (*TCBResult, error) {
	if len(p.FMSPC) != 6 || len(p.PCEID) != 2 {
		return nil, fmt.Errorf("%w: FMSPC must be 6 bytes and PCEID 2", ErrInvalidPlatform)
	}
	now := c.now()
	tl, err := c.getTCBInfo(ctx, p.FMSPC, now)
	if err != nil {
		return nil, err
	}
	ql, err := c.getQEIdentity(ctx, now)
	if err != nil {
		return nil, err
	}
	td := tl.ent.val.(*tcbDoc)
	qd := ql.ent.val.(*qeDoc)
	res, err := EvaluateCollateral(&td.s.TCBInfo, &qd.s.Identity, p, now)
	if err != nil {
		return nil, err
	}
	res.RootKeyID = c.rootKeyID
	var reasons []string
	if res.Reason != "" {
		reasons = append(reasons, res.Reason)
	}
	for _, l := range []lookupResult{tl, ql} {
		if l.stale {
			res.Stale = true
			res.CollateralExpired = true
			reasons = append(reasons, fmt.Sprintf("serving cached collateral after failed refresh: %v", l.fetchErr))
		}
	}
	dates := newDateSpan(res)
	dates.addCerts(td.chain)
	dates.addCerts(qd.chain)
	if len(p.PCKChain) >= 2 {
		dates.addCerts(p.PCKChain)
		crlReasons, err := c.checkCRLs(ctx, p.PCKChain, now, res, &dates)
		if err != nil {
			return nil, err
		}
		reasons = append(reasons, crlReasons...)
	}
	dates.apply(res)
	res.Reason = strings.Join(reasons, "; ")
	return res, nil
}

// EvaluateCollateral evaluates p against already verified TCB Info and QE
// identity at collateral time now, the way Intel's QVL does for TDX. It is
// pure: no I/O, no signature checks.
func EvaluateCollateral(info *TCBInfo, qe *EnclaveIdentity, p PlatformTCB, now time.Time) (*TCBResult, error) {
	if len(p.FMSPC) != 6 || len(p.PCEID) != 2 {
		return nil, fmt.Errorf("%w: FMSPC must be 6 bytes and PCEID 2", ErrInvalidPlatform)
	}
	if !equalBytes(info.FMSPC, p.FMSPC) {
		return nil, fmt.Errorf("%w: platform %x, TCB Info %X", ErrFMSPCMismatch, p.FMSPC, []byte(info.FMSPC))
	}
	if !equalBytes(info.PCEID, p.PCEID) {
		return nil, fmt.Errorf("%w: platform %x, TCB Info %X", ErrPCEIDMismatch, p.PCEID, []byte(info.PCEID))
	}
	res := &TCBResult{
		FMSPC:                          strings.ToUpper(hex.EncodeToString(info.FMSPC)),
		TCBInfoEvaluationDataNumber:    info.TCBEvaluationDataNumber,
		QEIdentityEvaluationDataNumber: qe.TCBEvaluationDataNumber,
		TCBEvaluationDataNumber:        min(info.TCBEvaluationDataNumber, qe.TCBEvaluationDataNumber),
		TCBInfoIssueDate:               info.IssueDate,
		TCBInfoNextUpdate:              info.NextUpdate,
		QEIdentityIssueDate:            qe.IssueDate,
		QEIdentityNextUpdate:           qe.NextUpdate,
	}
	var reasons []string
	var adv []string

	// QE identity first: a mismatch means the quote is not from Intel's
	// TD QE, which is a verification failure, not a TCB finding.
	ql, err := checkQEIdentity(qe, &p)
	if err != nil {
		return nil, err
	}
	if ql == nil {
		res.QEStatus = StatusRevoked
		reasons = append(reasons, fmt.Sprintf("QE ISVSVN %d is below every QE identity level", p.QEISVSVN))
	} else {
		res.QEStatus = ql.TCBStatus
		res.QETCBDate = rfc3339(ql.TCBDate)
	}

	pl := matchPlatformLevel(info, &p)
	if pl == nil {
		res.PlatformStatus = StatusUnknown
		reasons = append(reasons, "no TCB level matches the platform (TCB not supported)")
	} else {
		res.PlatformStatus = pl.TCBStatus
		res.PlatformTCBDate = rfc3339(pl.TCBDate)
		res.TCBDate = res.PlatformTCBDate
		adv = append(adv, pl.AdvisoryIDs...)
	}

	me, err := evalModule(info, &p)
	if err != nil {
		return nil, err
	}
	if me.moduleID == "" {
		res.ModuleStatus = res.PlatformStatus
	} else {
		res.ModuleIdentityID = me.moduleID
		res.ModuleStatus = me.status
		if me.level != nil {
			res.ModuleTCBDate = rfc3339(me.level.TCBDate)
			adv = append(adv, me.level.AdvisoryIDs...)
		} else if me.status == StatusUnknown {
			reasons = append(reasons, fmt.Sprintf("TDX module %s (SVN %d) not covered by TCB Info", me.moduleID, p.TeeTCBSVN[0]))
		}
	}
	if ql != nil {
		adv = append(adv, ql.AdvisoryIDs...)
	}
	res.AdvisoryIDs = dedup(adv)
	res.Status = CombineStatus(res.PlatformStatus, res.ModuleStatus, res.QEStatus)

	for _, w := range []struct {
		name       string
		issue, nxt time.Time
	}{{"TCB Info", info.IssueDate, info.NextUpdate}, {"QE identity", qe.IssueDate, qe.NextUpdate}} {
		if r := windowReason(w.name, w.issue, w.nxt, now); r != "" {
			res.CollateralExpired = true
			reasons = append(reasons, r)
		}
	}
	d := newDateSpan(res)
	d.apply(res)
	res.Reason = strings.Join(reasons, "; ")
	return res, nil
}

func windowReason(name string, issue, next, now time.Time) string {
	switch {
	case now.After(next):
		return fmt.Sprintf("%s expired at %s", name, rfc3339(next))
	case now.Before(issue):
		return fmt.Sprintf("%s not valid before %s", name, rfc3339(issue))
	}
	return ""
}

func equalBytes(a, b []byte) bool {
	return len(a) == len(b) && string(a) == string(b)
}

func dedup(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// dateSpan accumulates earliest/latest issue and earliest expiration.
type dateSpan struct{ earliestIssue, latestIssue, earliestExp time.Time }

func newDateSpan(r *TCBResult) dateSpan {
	var d dateSpan
	d.add(r.TCBInfoIssueDate, r.TCBInfoNextUpdate)
	d.add(r.QEIdentityIssueDate, r.QEIdentityNextUpdate)
	d.add(r.EarliestIssueDate, r.EarliestExpirationDate)
	d.add(r.LatestIssueDate, time.Time{})
	return d
}

func (d *dateSpan) add(issue, exp time.Time) {
	if !issue.IsZero() {
		if d.earliestIssue.IsZero() || issue.Before(d.earliestIssue) {
			d.earliestIssue = issue
		}
		if issue.After(d.latestIssue) {
			d.latestIssue = issue
		}
	}
	if !exp.IsZero() && (d.earliestExp.IsZero() || exp.Before(d.earliestExp)) {
		d.earliestExp = exp
	}
}

func (d *dateSpan) addCerts(certs []*x509.Certificate) {
	for _, c := range certs {
		d.add(c.NotBefore, c.NotAfter)
	}
}

func (d *dateSpan) apply(r *TCBResult) {
	r.EarliestIssueDate, r.LatestIssueDate, r.EarliestExpirationDate = d.earliestIssue, d.latestIssue, d.earliestExp
}
