package nvidia

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/internal/fifo"

	"github.com/sigil-attestation/sigil/verifier"
)

// DefaultChainCacheSize is the number of verified chains kept by default.
const DefaultChainCacheSize = 64

// Options configure a Verifier.
type Options struct {
	// Now returns the time at which device certificates must be valid.
	// Nil means time.Now.
	Now func() time.Time
	// Roots are the trusted device roots; a chain's last certificate must
	// be byte-equal to one of them. Nil or empty means the embedded NVIDIA
	// Device Identity CA (SHA-256 DeviceRootFingerprint).
	Roots []*x509.Certificate
	// Appraiser, when set, appraises the measurements of genuine devices
	// against NVIDIA RIMs. Nil: measres "not-checked".
	Appraiser MeasurementAppraiser
	// Revocation, when set, checks verified device chains (OCSP). Nil:
	// x-nvidia-cert-ocsp-status "not-checked".
	Revocation RevocationChecker
	// FailOnInvalidDevice makes Verify return an error (wrapping the
	// sentinel of each failure) when any device's evidence is not genuine
	// (parse, chain, signature, FWID or nonce). False (the default) returns
	// a Result per device with claims recording the failure. Appraisal
	// outcomes (RIM, OCSP) never fail Verify.
	FailOnInvalidDevice bool
	// ChainCacheSize bounds the number of verified chains kept (keyed by
	// arch and chain bytes), so a repeated device costs only the report
	// signature. 0 means DefaultChainCacheSize; negative disables caching.
	ChainCacheSize int
	// MaxConcurrency bounds how many devices are verified at once. 0 means
	// runtime.GOMAXPROCS(0).
	MaxConcurrency int
	// Logger receives debug logs. Nil means slog.Default().
	Logger *slog.Logger
}

// Verifier verifies NVIDIA device evidence. It is safe for concurrent use.
type Verifier struct {
	now        func() time.Time
	roots      []*x509.Certificate
	appraiser  MeasurementAppraiser
	revocation RevocationChecker
	strict     bool
	cache      *fifo.Cache[[32]byte, *chainInfo]
	maxConc    int
	log        *slog.Logger
}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a Verifier configured by opts.
func New(opts Options) (*Verifier, error) {
	v := &Verifier{
		now:        opts.Now,
		roots:      opts.Roots,
		appraiser:  opts.Appraiser,
		revocation: opts.Revocation,
		strict:     opts.FailOnInvalidDevice,
		maxConc:    opts.MaxConcurrency,
		log:        opts.Logger,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if len(v.roots) == 0 {
		roots, err := DefaultRoots()
		if err != nil {
			return nil, err
		}
		v.roots = roots
	}
	size := opts.ChainCacheSize
	if size == 0 {
		size = DefaultChainCacheSize
	}
	v.cache = fifo.New[[32]byte, *chainInfo](size)
	if v.maxConc <= 0 {
		v.maxConc = runtime.GOMAXPROCS(0)
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	return v, nil
}

// Evidence is Trustee's NVIDIA evidence.
type Evidence struct {
	Devices []DeviceEvidence `json:"device_evidence_list"`
}

// DeviceEvidence is one device entry.
type DeviceEvidence struct {
	// Arch is "HOPPER", "BLACKWELL" or "LS10" (case-insensitive).
	Arch string `json:"arch"`
	// UUID identifies the device; "unknown" when absent.
	UUID string `json:"uuid,omitempty"`
	// Evidence is the SPDM request ‖ response, hex or standard base64.
	Evidence string `json:"evidence"`
	// Certificate is the standard base64 of a PEM chain, leaf first.
	Certificate string `json:"certificate"`
}

// ParseEvidence parses and checks the evidence JSON shape: at least one
// device, each with a supported arch. Report and chain contents are checked
// per device by Verify.
func ParseEvidence(data []byte) (*Evidence, error) {
	var ev Evidence
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON value", ErrEvidence)
	}
	if len(ev.Devices) == 0 {
		return nil, fmt.Errorf("%w: empty device_evidence_list", ErrEvidence)
	}
	for i := range ev.Devices {
		if _, err := ParseArch(ev.Devices[i].Arch); err != nil {
			return nil, fmt.Errorf("%w: device %d: %w", ErrEvidence, i, err)
		}
		if ev.Devices[i].UUID == "" {
			ev.Devices[i].UUID = "unknown"
		}
	}
	return &ev, nil
}

// ParseNVATEvidence converts NVIDIA's NVAT evidence JSON (an array of
// {"arch","nonce","evidence","certificate",…}) into Evidence, so vectors
// captured with NVIDIA's SDK can be verified. Verify itself accepts only
// Trustee's shape.
func ParseNVATEvidence(data []byte) (*Evidence, error) {
	var items []struct {
		Arch        string `json:"arch"`
		UUID        string `json:"uuid"`
		Evidence    string `json:"evidence"`
		Certificate string `json:"certificate"`
	}
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	ev := &Evidence{}
	for _, it := range items {
		ev.Devices = append(ev.Devices, DeviceEvidence{Arch: it.Arch, UUID: it.UUID, Evidence: it.Evidence, Certificate: it.Certificate})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	return ParseEvidence(b)
}

// Verify implements verifier.Verifier. exp.ReportData, regularised to 32
// bytes, must equal every device's SPDM nonce (nil: not checked);
// exp.InitDataDigest is ignored, as in Trustee. One device presented more
// than once (the same leaf or BROM certificate, or the same ueid) is an
// error (ErrDuplicateDevice), whatever FailOnInvalidDevice says: the
// evidence would otherwise count one device several times. When the
// devices form a PPCIe set, one more result of class ClassPPCIe describes
// the topology (ValidatePPCIe); a failed topology is an error only with
// FailOnInvalidDevice.
func (v *Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	results := make([]verifier.Result, len(ev.Devices))
	states := make([]*deviceState, len(ev.Devices))
	errs := make([]error, len(ev.Devices))
	sem := make(chan struct{}, v.maxConc)
	var wg sync.WaitGroup
	for i := range ev.Devices {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], states[i], errs[i] = v.verifyDevice(ctx, ev.Devices[i], exp)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chains := make([][]*x509.Certificate, len(states))
	for i, s := range states {
		if s != nil {
			chains[i] = s.certs
		}
	}
	if err := distinctDevices(ev.Devices, chains); err != nil {
		return nil, err
	}
	var all []error
	for i, e := range errs {
		if e != nil && (v.strict || errors.Is(e, ErrServiceUnavailable)) {
			all = append(all, fmt.Errorf("device %d (%s): %w", i, ev.Devices[i].UUID, e))
		}
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}
	// A PPCIe device set gets one more result describing its topology.
	pp, err := ValidatePPCIe(results)
	if err != nil && v.strict {
		return nil, err
	}
	if pp != nil {
		results = append(results, *pp)
	}
	return results, nil
}

// VerifyDevice verifies one device entry. It always returns a Result whose
// claims record every check; the error is non-nil when the evidence is not
// genuine (it wraps the sentinel of every failing check).
func (v *Verifier) VerifyDevice(ctx context.Context, d DeviceEvidence, exp verifier.Expected) (verifier.Result, error) {
	res, _, err := v.verifyDevice(ctx, d, exp)
	return res, err
}

// verifyDevice is VerifyDevice that also returns the device's state (nil
// when the arch is not supported).
func (v *Verifier) verifyDevice(ctx context.Context, d DeviceEvidence, exp verifier.Expected) (verifier.Result, *deviceState, error) {
	arch, err := ParseArch(d.Arch)
	if err != nil {
		return verifier.Result{}, nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	uuid := d.UUID
	if uuid == "" {
		uuid = "unknown"
	}
	st := &deviceState{arch: arch, uuid: uuid}
	v.check(ctx, st, d, exp)
	if st.genuine() {
		v.appraise(ctx, st)
	}
	// The measurement list echoes the raw report; tokens carry it only
	// with verbose_token.
	res := verifier.Result{Class: arch.Class(), Claims: st.claims(), RawClaims: []string{"measurements"}}
	if st.unavailable != nil {
		return res, st, st.unavailable
	}
	if err := st.err(); err != nil {
		v.log.DebugContext(ctx, "nvidia device evidence not genuine", "uuid", uuid, "arch", string(arch), "error", err)
		return res, st, err
	}
	return res, st, nil
}

// CheckDistinctDevices fails (ErrDuplicateDevice) when two entries of
// devs present the same device: the same leaf certificate, the same BROM
// certificate (NVIDIA issues one per device) or the same ueid (leaf serial
// number), whatever arch each declares. Entries whose certificates do not
// parse carry no identity and are not compared. Verify applies it; the
// Remote (NRAS) verifier calls it before sending the evidence.
func CheckDistinctDevices(devs []DeviceEvidence) error {
	chains := make([][]*x509.Certificate, len(devs))
	for i, d := range devs {
		pemBytes, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.Certificate))
		if err != nil {
			continue
		}
		chains[i], _ = ParseCertChain(pemBytes)
	}
	return distinctDevices(devs, chains)
}

// distinctDevices is CheckDistinctDevices on parsed chains (nil: none).
func distinctDevices(devs []DeviceEvidence, chains [][]*x509.Certificate) error {
	seen := map[string]int{}
	var errs []error
	for i, certs := range chains {
		reported := false
		for _, id := range identities(certs) {
			j, dup := seen[id]
			if !dup {
				seen[id] = i
				continue
			}
			if !reported {
				reported = true
				errs = append(errs, fmt.Errorf("%w: device %d (%s, %s) and device %d (%s, %s) have the same %s",
					ErrDuplicateDevice, j, devs[j].UUID, devs[j].Arch, i, devs[i].UUID, devs[i].Arch, id))
			}
		}
	}
	return errors.Join(errs...)
}

// identities names a device by its certificates ("leaf certificate
// <sha256>", "ueid <serial>", "BROM certificate <sha256>"); nil without
// certificates.
func identities(certs []*x509.Certificate) []string {
	if len(certs) == 0 {
		return nil
	}
	digest := func(c *x509.Certificate) string {
		sum := sha256.Sum256(c.Raw)
		return hex.EncodeToString(sum[:])
	}
	ids := []string{
		"leaf certificate " + digest(certs[0]),
		"ueid " + certs[0].SerialNumber.String(),
	}
	if len(certs) > 1 {
		ids = append(ids, "BROM certificate "+digest(certs[1]))
	}
	return ids
}

// deviceState collects the outcome of each check for the claims.
type deviceState struct {
	arch Arch
	uuid string

	report    *Report
	parseErr  error
	config    map[string]any
	certs     []*x509.Certificate // parsed, maybe unverified
	chain     *chainInfo          // non-nil when the chain verified
	chainErr  error
	archErr   error  // the declared arch differs from the certificates'
	chainStat string // "valid" | "invalid" | "expired"
	sigErr    error
	sigOK     bool
	fwidState string // match | mismatch | skipped-no-report-fwid | missing-cert-fwid | not-checked
	fwidErr   error
	nonceOK   *bool
	nonceErr  error

	ocspStatus, ocspDetail string
	revoked                bool

	meas       *MeasurementResult
	measReason string
	// unavailable records a vendor service that could not be reached
	// (ErrServiceUnavailable from the appraiser or revocation checker).
	unavailable error
}

func (s *deviceState) genuine() bool {
	return s.parseErr == nil && s.chain != nil && s.archErr == nil && s.sigOK && s.fwidErr == nil && s.nonceErr == nil
}

func (s *deviceState) errs() []error {
	var out []error
	for _, e := range []error{s.parseErr, s.chainErr, s.archErr, s.sigErr, s.fwidErr, s.nonceErr} {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// err joins the errors of every failed genuineness check (nil if none).
func (s *deviceState) err() error { return errors.Join(s.errs()...) }

func (v *Verifier) check(ctx context.Context, s *deviceState, d DeviceEvidence, exp verifier.Expected) {
	now := v.now()

	// Report.
	raw, err := DecodeReport(d.Evidence)
	if err == nil {
		s.report, err = ParseReport(raw)
	}
	if err == nil {
		s.config, err = configClaims(s.report.Response.Fields, s.arch.IsSwitch())
	}
	if err != nil {
		s.parseErr = err
		s.report = nil
	}

	// Chain (cached when verified), and the declared arch against the
	// model the certificates name.
	v.checkChain(s, d.Certificate, now)
	if s.chain != nil {
		s.archErr = s.chain.checkArch(s.arch)
	}

	// Signature with the leaf key (the chain's, or certificate 0's when the
	// chain failed, so the claims still tell whether it matches).
	s.fwidState = "not-checked"
	if s.report != nil {
		var key *ecdsa.PublicKey
		switch {
		case s.chain != nil:
			key = s.chain.leafKey
		case len(s.certs) > 0:
			key, _ = s.certs[0].PublicKey.(*ecdsa.PublicKey)
		}
		if key == nil {
			s.sigErr = fmt.Errorf("%w: no leaf ECDSA key", ErrSignature)
		} else if err := s.report.VerifySignature(key); err != nil {
			s.sigErr = err
		} else {
			s.sigOK = true
		}
	} else {
		s.sigErr = fmt.Errorf("%w: report not parsed", ErrSignature)
	}

	// FWID.
	if s.report != nil && s.chain != nil {
		v.checkFWID(s)
	}

	// Nonce.
	if s.report != nil && exp.ReportData != nil {
		want := regularize(exp.ReportData, NonceSize)
		ok := bytes.Equal(want, s.report.Request.Nonce[:])
		s.nonceOK = &ok
		if !ok {
			s.nonceErr = fmt.Errorf("%w: report nonce %x, expected %x", ErrNonceMismatch, s.report.Request.Nonce[:], want)
		}
	}

	// Revocation of a chain that verified.
	s.ocspStatus = "not-checked"
	s.ocspDetail = "no revocation checker configured"
	if s.chain != nil && v.revocation != nil {
		status, detail, err := v.revocation.CheckChain(ctx, s.chain.certs)
		switch {
		case errors.Is(err, ErrServiceUnavailable):
			s.ocspStatus, s.ocspDetail, s.unavailable = "unknown", err.Error(), err
		case err != nil:
			s.ocspStatus, s.ocspDetail = "unknown", err.Error()
		case status == "good" || status == "revoked" || status == "unknown":
			s.ocspStatus, s.ocspDetail = status, detail
			s.revoked = status == "revoked"
		default:
			s.ocspStatus, s.ocspDetail = "unknown", fmt.Sprintf("unexpected revocation status %q", status)
		}
	} else if s.chain == nil {
		s.ocspDetail = "certificate chain not verified"
	}
}

func (v *Verifier) checkChain(s *deviceState, certB64 string, now time.Time) {
	s.chainStat = "invalid"
	pemBytes, err := base64.StdEncoding.DecodeString(strings.TrimSpace(certB64))
	if err != nil {
		s.chainErr = fmt.Errorf("%w: certificate is not standard base64: %w", ErrCertChain, err)
		return
	}
	key := chainKey(s.arch, pemBytes)
	if info := v.cachedChain(key, now); info != nil {
		s.chain, s.certs, s.chainStat = info, info.certs, "valid"
		return
	}
	certs, err := ParseCertChain(pemBytes)
	if err != nil {
		s.chainErr = err
		return
	}
	s.certs = certs
	info, err := verifyChain(certs, v.roots, s.arch, now)
	if err != nil {
		s.chainErr = err
		var ce *chainError
		if errors.As(err, &ce) {
			s.chainStat = ce.status
		}
		return
	}
	s.chain, s.chainStat = info, "valid"
	v.cache.Put(key, info)
}

func (v *Verifier) checkFWID(s *deviceState) {
	if s.chain.fwidErr != nil {
		s.fwidState = "missing-cert-fwid"
		s.fwidErr = s.chain.fwidErr
		return
	}
	rf, ok := s.report.Field(OpaqueFWID)
	if !ok {
		s.fwidState = "skipped-no-report-fwid"
		return
	}
	if !bytes.Equal(rf, s.chain.certFWID) {
		s.fwidState = "mismatch"
		s.fwidErr = fmt.Errorf("%w: report FWID %x, certificate FWID %x", ErrFWID, rf, s.chain.certFWID)
		return
	}
	s.fwidState = "match"
}

func (v *Verifier) appraise(ctx context.Context, s *deviceState) {
	if v.appraiser == nil {
		s.measReason = "no measurement appraiser (RIM) configured"
		return
	}
	res, err := v.appraiser.Appraise(ctx, s.deviceInfo())
	if err != nil {
		s.measReason = "measurements not compared: " + err.Error()
		s.meas = &MeasurementResult{}
		if errors.Is(err, ErrServiceUnavailable) {
			s.unavailable = err
		}
		return
	}
	if res == nil {
		s.measReason = "measurements not compared: the measurement appraiser returned no result"
		s.meas = &MeasurementResult{}
		return
	}
	s.meas = res
	if !res.Success {
		s.measReason = failureReason(res)
	}
}

// failureReason explains a failed appraisal: the appraiser's own reason,
// else the mismatches, else that nothing was compared. It never says the
// measurements do not match unless some were compared and differed.
func failureReason(res *MeasurementResult) string {
	switch {
	case res.Reason != "":
		return res.Reason
	case len(res.Mismatches) > 0:
		return mismatchReason(res.Mismatches)
	}
	return "measurements not compared: the measurement appraiser gave no reason"
}

// mismatchReason is "N measurement(s) do not match the reference values
// (RIM indices …)".
func mismatchReason(ms []MeasurementMismatch) string {
	idx := make([]string, len(ms))
	for i, m := range ms {
		idx[i] = strconv.Itoa(m.Index)
	}
	verb := "measurements do"
	if len(ms) == 1 {
		verb = "measurement does"
	}
	return fmt.Sprintf("%d %s not match the reference values (RIM indices %s)", len(ms), verb, strings.Join(idx, ", "))
}

func (s *deviceState) deviceInfo() DeviceInfo {
	r := s.report
	str := func(t uint16) string {
		b, _ := r.Field(t)
		return cString(b)
	}
	di := DeviceInfo{
		Arch:          s.arch,
		UUID:          s.uuid,
		DriverVersion: str(OpaqueDriverVersion),
		VBIOSVersion:  s.vbiosVersion(),
		Project:       str(OpaqueProject),
		ProjectSKU:    str(OpaqueProjectSKU),
		ChipSKU:       str(OpaqueChipSKU),
		ChipInfo:      str(OpaqueChipInfo),
		Measurements:  make(map[int]string, len(r.Response.Blocks)),
		Opaque:        make(map[uint16][]byte, len(r.Response.Fields)),
	}
	if b, ok := r.Field(OpaqueNVDEC0Status); ok {
		di.NVDEC0Status = b
	}
	for _, blk := range r.Response.Blocks {
		di.Measurements[int(blk.Index)] = hex.EncodeToString(blk.Value)
	}
	for _, f := range r.Response.Fields {
		di.Opaque[f.Type] = f.Data
	}
	return di
}

// vbiosVersion is the upper-case VBIOS (GPU) or BIOS (switch) version, ""
// when absent.
func (s *deviceState) vbiosVersion() string {
	if s.config == nil {
		return ""
	}
	vb, _ := s.config["vbios_version"].(string)
	return strings.ToUpper(vb)
}

// VerifySignature checks the report's ECDSA P-384/SHA-384 raw r‖s signature
// over SignedBytes with pub.
func (r *Report) VerifySignature(pub *ecdsa.PublicKey) error {
	sig := r.Response.Signature
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes", ErrSignature, len(sig))
	}
	h := sha512.Sum384(r.SignedBytes())
	rr := new(big.Int).SetBytes(sig[:SignatureSize/2])
	ss := new(big.Int).SetBytes(sig[SignatureSize/2:])
	if !ecdsa.Verify(pub, h[:], rr, ss) {
		return ErrSignature
	}
	return nil
}

// regularize truncates or zero-pads b to n bytes (Trustee's
// regularize_data).
func regularize(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
