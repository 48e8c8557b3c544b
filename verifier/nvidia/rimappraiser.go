package nvidia

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
)

// RIMAppraiser is the MeasurementAppraiser backed by NVIDIA's reference
// integrity manifests: it fetches the driver and VBIOS RIMs (or the switch
// BIOS RIM), verifies their XML signatures and signing chains (and, with a
// RevocationChecker, their OCSP status), and compares every active
// measurement with the device's.
type RIMAppraiser struct {
	offline    bool
	fetch      RIMFetcher
	verify     *rim.Verifier
	revocation RevocationChecker
	now        func() time.Time
}

// RIMFetcher returns a RIM by id (rim.Client does).
type RIMFetcher interface {
	Fetch(ctx context.Context, id string) (*rim.Document, error)
}

// RIMAppraiserOptions configure NewRIMAppraiser.
type RIMAppraiserOptions struct {
	// Fetcher retrieves RIMs (the RIM service, a cache, an offline dir).
	Fetcher RIMFetcher
	// Verifier checks RIM signatures and chains; nil means the pinned
	// NVIDIA RIM root.
	Verifier *rim.Verifier
	// Revocation, when set, checks the RIM signing chains (OCSP).
	Revocation RevocationChecker
	// Now is the clock for the RIM signing certificates (default now).
	Now func() time.Time
	// Offline records an unreachable RIM service in the claims instead of
	// failing verification with ErrServiceUnavailable.
	Offline bool
}

// NewRIMAppraiser builds a RIMAppraiser.
func NewRIMAppraiser(opts RIMAppraiserOptions) (*RIMAppraiser, error) {
	if opts.Fetcher == nil {
		return nil, errors.New("nvidia: RIMAppraiserOptions.Fetcher is required")
	}
	if opts.Verifier == nil {
		v, err := rim.NewVerifier(rim.VerifierOptions{})
		if err != nil {
			return nil, err
		}
		opts.Verifier = v
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RIMAppraiser{fetch: opts.Fetcher, verify: opts.Verifier, revocation: opts.Revocation, now: opts.Now, offline: opts.Offline}, nil
}

// Appraise implements MeasurementAppraiser. RIM problems are reported in
// the result (they make the device untrusted, not the attestation fail);
// only a cancelled context is an error.
func (a *RIMAppraiser) Appraise(ctx context.Context, dev DeviceInfo) (*MeasurementResult, error) {
	res := &MeasurementResult{IndexNoConflict: true}
	var driver, vbios *rim.Manifest
	var unavailable error
	if dev.Arch.IsSwitch() {
		id, err := rim.SwitchBIOSID(dev.VBIOSVersion)
		res.VBIOS, vbios, unavailable = a.load(ctx, id, err, dev.VBIOSVersion)
	} else {
		var id string
		var err error
		if dev.Arch == ArchBlackwell {
			id, err = rim.BlackwellDriverID(dev.ChipInfo, dev.DriverVersion)
		} else {
			id, err = rim.HopperDriverID(dev.DriverVersion)
		}
		var u1, u2 error
		res.Driver, driver, u1 = a.load(ctx, id, err, dev.DriverVersion)
		id, err = rim.VBIOSID(dev.Project, dev.ProjectSKU, dev.ChipSKU, dev.VBIOSVersion)
		res.VBIOS, vbios, u2 = a.load(ctx, id, err, dev.VBIOSVersion)
		unavailable = errors.Join(u1, u2)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if unavailable != nil {
		return nil, unavailable
	}
	if vbios != nil {
		res.OEMID = vbios.Meta.FirmwareManufacturerID
	}
	if why := unusableRIMs(dev.Arch, res, driver, vbios); why != "" {
		res.Reason = "measurements not compared: " + why
		res.Warnings = append(res.Warnings, res.Reason)
		return res, nil
	}
	opts := rim.CompareOptions{}
	if len(dev.NVDEC0Status) == 1 {
		b := dev.NVDEC0Status[0]
		opts.NVDEC0Status = &b
	}
	cmp, err := rim.Compare(driver, vbios, dev.Measurements, opts)
	switch {
	case errors.Is(err, rim.ErrIndexConflict):
		res.IndexNoConflict = false
		res.Reason = "measurements not compared: the driver and VBIOS RIMs bind the same measurement index: " + err.Error()
		res.Warnings = append(res.Warnings, err.Error())
		return res, nil
	case err != nil:
		res.Reason = "measurements not compared: " + err.Error()
		res.Warnings = append(res.Warnings, "measurement comparison failed: "+err.Error())
		return res, nil
	}
	for _, m := range cmp.Mismatches {
		res.Mismatches = append(res.Mismatches, MeasurementMismatch{
			Index: m.Index, Source: m.Source, GoldenSize: m.ExpectedSize, GoldenValues: m.Expected,
			RuntimeSize: m.ActualSize, RuntimeValue: m.Actual,
		})
	}
	switch {
	case len(res.Mismatches) > 0:
		res.Reason = mismatchReason(res.Mismatches)
	case cmp.Compared == 0:
		// Nothing compared is not a match.
		res.Reason = "measurements not compared: the RIMs list no active measurement to compare"
	default:
		res.Success = cmp.Match && res.VBIOS.ok() && (dev.Arch.IsSwitch() || res.Driver.ok())
		if !res.Success {
			res.Reason = "measurements compared, but a RIM is not trusted"
		}
	}
	return res, nil
}

// unusableRIMs says which RIM cannot be compared with and why ("" when
// every RIM the device needs is genuine).
func unusableRIMs(arch Arch, res *MeasurementResult, driver, vbios *rim.Manifest) string {
	var why []string
	add := func(what string, m *rim.Manifest, st *RIMStatus) {
		if m != nil {
			return
		}
		detail := "not fetched or not verified"
		if st != nil && st.Error != "" {
			detail = st.Error
		}
		id := ""
		if st != nil && st.ID != "" {
			id = " " + st.ID
		}
		why = append(why, fmt.Sprintf("%s RIM%s unusable (%s)", what, id, detail))
	}
	if arch.IsSwitch() {
		add("switch BIOS", vbios, res.VBIOS)
	} else {
		add("driver", driver, res.Driver)
		add("VBIOS", vbios, res.VBIOS)
	}
	return strings.Join(why, "; ")
}

// load fetches and verifies one RIM. It returns the manifest only when the
// RIM is genuine (signature and chain valid, not revoked), and an error
// wrapping ErrServiceUnavailable when a service could not be reached
// outside offline mode.
func (a *RIMAppraiser) load(ctx context.Context, id string, idErr error, version string) (*RIMStatus, *rim.Manifest, error) {
	st, m, err := a.loadRIM(ctx, id, idErr, version)
	if err != nil && !a.offline {
		return st, nil, fmt.Errorf("%w: %w", ErrServiceUnavailable, err)
	}
	return st, m, nil
}

func (a *RIMAppraiser) loadRIM(ctx context.Context, id string, idErr error, version string) (*RIMStatus, *rim.Manifest, error) {
	st := &RIMStatus{ID: id}
	if idErr != nil {
		st.Error = fmt.Sprintf("no RIM id: %v", idErr)
		return st, nil, nil
	}
	doc, err := a.fetch.Fetch(ctx, id)
	if err != nil {
		st.Error = fmt.Sprintf("fetching RIM %s: %v", id, err)
		if errors.Is(err, rim.ErrService) {
			return st, nil, fmt.Errorf("RIM %s: %w", id, err)
		}
		return st, nil, nil
	}
	st.Fetched = true
	// Signature first, to report it separately from the chain.
	m, err := rim.VerifySignature(doc.XML)
	if err != nil {
		st.Error = fmt.Sprintf("RIM %s signature: %v", id, err)
		return st, nil, nil
	}
	// No XSD validator exists in Go's standard library; the parser checks
	// the structure of every element and attribute the verifier reads.
	st.SchemaValidated = true
	st.SignatureVerified = true
	st.MeasurementsAvailable = len(m.Active()) > 0
	st.VersionMatch = strings.EqualFold(strings.TrimSpace(m.Meta.ColloquialVersion), strings.TrimSpace(version))
	chain, err := a.verify.VerifyChain(m.Certificates, a.now())
	st.CertChain = &CertChainStatus{Status: "valid", OCSPStatus: "not-checked"}
	switch {
	case errors.Is(err, rim.ErrCertExpired):
		st.CertChain.Status = "expired"
		st.Error = fmt.Sprintf("RIM %s signing chain: %v", id, err)
		return st, nil, nil
	case err != nil:
		st.CertChain.Status = "invalid"
		st.Error = fmt.Sprintf("RIM %s signing chain: %v", id, err)
		return st, nil, nil
	}
	for _, c := range chain {
		if st.CertChain.Expiration.IsZero() || c.NotAfter.Before(st.CertChain.Expiration) {
			st.CertChain.Expiration = c.NotAfter
		}
	}
	if a.revocation != nil {
		status, detail, err := a.revocation.CheckChain(ctx, chain)
		if err != nil {
			st.CertChain.OCSPStatus = "unknown"
			st.Error = fmt.Sprintf("RIM %s OCSP: %v", id, err)
			if errors.Is(err, ErrServiceUnavailable) {
				return st, nil, err
			}
			return st, nil, nil
		}
		st.CertChain.OCSPStatus = status
		if status == "revoked" {
			st.CertChain.Status = "revoked"
			st.CertChain.RevocationReason = detail
			st.Error = fmt.Sprintf("RIM %s signing certificate revoked: %s", id, detail)
			return st, nil, nil
		}
	}
	if !st.VersionMatch {
		st.Error = fmt.Sprintf("RIM %s is for version %q, the device reports %q", id, m.Meta.ColloquialVersion, version)
		return st, nil, nil
	}
	return st, m, nil
}

func (s *RIMStatus) ok() bool {
	return s != nil && s.Error == "" && s.SignatureVerified && s.CertChain != nil && s.CertChain.Status == "valid"
}
