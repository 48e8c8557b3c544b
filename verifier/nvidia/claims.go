package nvidia

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Claim names specific to Sigil (diagnostics next to the NRAS names).
const (
	// ClaimErrors lists why the evidence is not genuine (absent when it is).
	ClaimErrors = "x-sigil-errors"
	// ClaimFWID is "match", "mismatch", "skipped-no-report-fwid" (the report
	// has no FWID field: older drivers, switches), "missing-cert-fwid" or
	// "not-checked" (chain or report invalid).
	ClaimFWID = "x-sigil-fwid"
	// ClaimNonce is "match", "mismatch" or "not-checked".
	ClaimNonce = "x-sigil-nonce"
	// ClaimMeasresReason says why measres is not "success".
	ClaimMeasresReason = "x-sigil-measres-reason"
	// ClaimOCSPDetail is the revocation checker's detail (or why OCSP was
	// not checked), inside the cert-chain object.
	ClaimOCSPDetail = "x-sigil-ocsp-detail"
)

const expirationLayout = "2006-01-02T15:04:05Z"

func certChainClaim(c *CertChainStatus, detail string) map[string]any {
	m := map[string]any{
		"x-nvidia-cert-status":            c.Status,
		"x-nvidia-cert-ocsp-status":       c.OCSPStatus,
		"x-nvidia-cert-expiration-date":   nil,
		"x-nvidia-cert-revocation-reason": nil,
	}
	if !c.Expiration.IsZero() {
		m["x-nvidia-cert-expiration-date"] = c.Expiration.UTC().Format(expirationLayout)
	}
	if c.RevocationReason != "" {
		m["x-nvidia-cert-revocation-reason"] = c.RevocationReason
	}
	if detail != "" {
		m[ClaimOCSPDetail] = detail
	}
	return m
}

func earliestNotAfter(s *deviceState) time.Time {
	if s.chain != nil {
		return s.chain.notAfter
	}
	var t time.Time
	for _, c := range s.certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// claims renders the device outcome: Trustee's local claims (arch, uuid,
// measurements, config) plus NRAS v3 names; null for what was not computed.
func (s *deviceState) claims() map[string]any {
	p := s.arch.claimPrefix()
	c := map[string]any{
		"arch":                 s.arch.claimName(),
		"uuid":                 s.uuid,
		"x-nvidia-device-type": "gpu",
	}
	if s.arch.IsSwitch() {
		c["x-nvidia-device-type"] = "nvswitch"
	}
	parsed := s.report != nil

	// Report.
	c[p+"attestation-report-parsed"] = parsed
	c[p+"attestation-report-signature-verified"] = s.sigOK
	c[p+"arch-check"] = s.chain != nil && s.archErr == nil
	if s.nonceOK != nil {
		c[p+"attestation-report-nonce-match"] = *s.nonceOK
		c[ClaimNonce] = map[bool]string{true: "match", false: "mismatch"}[*s.nonceOK]
	} else {
		c[p+"attestation-report-nonce-match"] = nil
		c[ClaimNonce] = "not-checked"
	}
	c["eat_nonce"] = nil
	if parsed {
		c["eat_nonce"] = hex.EncodeToString(s.report.Request.Nonce[:])
		meas := make(map[string]any, len(s.report.Response.Blocks))
		for _, b := range s.report.Response.Blocks {
			meas[strconv.Itoa(int(b.Index))] = hex.EncodeToString(b.Value)
		}
		c["measurements"] = meas
		c["config"] = s.config
	}
	if s.arch.IsSwitch() {
		c[p+"bios-version"] = nilIfEmpty(s.vbiosVersion())
	} else {
		dv, _ := s.config["driver_version"].(string)
		c[p+"driver-version"] = nilIfEmpty(dv)
		c[p+"vbios-version"] = nilIfEmpty(s.vbiosVersion())
	}
	if parsed {
		s.pdiClaims(c)
		s.protectedPCIeClaim(c)
	}

	// Device chain.
	status := s.chainStat
	if s.revoked {
		status = "revoked"
	}
	cc := &CertChainStatus{Status: status, OCSPStatus: s.ocspStatus, Expiration: earliestNotAfter(s)}
	if s.revoked {
		cc.RevocationReason = s.ocspDetail
	}
	c[p+"attestation-report-cert-chain"] = certChainClaim(cc, s.ocspDetail)
	c[p+"attestation-report-cert-chain-fwid-match"] = s.fwidState == "match" || s.fwidState == "skipped-no-report-fwid"
	c[ClaimFWID] = s.fwidState
	c["hwmodel"], c["ueid"] = nil, nil
	if s.chain != nil {
		c["hwmodel"] = s.chain.hwmodel
		c["ueid"] = s.chain.ueid
	}

	// Appraisal.
	s.appraisalClaims(c, p)

	if es := s.errs(); len(es) > 0 {
		l := make([]any, len(es))
		for i, e := range es {
			l[i] = e.Error()
		}
		c[ClaimErrors] = l
	}
	return c
}

func (s *deviceState) appraisalClaims(c map[string]any, p string) {
	rims := []string{"driver-rim", "vbios-rim"}
	if s.arch.IsSwitch() {
		rims = []string{"bios-rim"}
	}
	m := s.meas
	c["oemid"], c["secboot"], c["dbgstat"] = nil, nil, nil
	c["x-nvidia-attestation-warning"] = nil
	if !s.arch.IsSwitch() {
		c[p+"vbios-index-no-conflict"] = nil
	}
	if m == nil {
		c["measres"] = "not-checked"
		reason := s.measReason
		if reason == "" {
			reason = "evidence not genuine"
		}
		c[ClaimMeasresReason] = reason
		for _, r := range rims {
			setRIMClaims(c, p+r, nil)
		}
		return
	}
	if m.Success {
		c["measres"] = "success"
		c["secboot"] = true
		c["dbgstat"] = "disabled"
	} else {
		c["measres"] = "fail"
		c[ClaimMeasresReason] = s.measReason
	}
	c["oemid"] = nilIfEmpty(m.OEMID)
	if len(m.Warnings) > 0 {
		c["x-nvidia-attestation-warning"] = strings.Join(m.Warnings, "; ")
	}
	if s.arch.IsSwitch() {
		setRIMClaims(c, p+"bios-rim", m.VBIOS)
	} else {
		setRIMClaims(c, p+"driver-rim", m.Driver)
		setRIMClaims(c, p+"vbios-rim", m.VBIOS)
		c[p+"vbios-index-no-conflict"] = m.IndexNoConflict
	}
	if len(m.Mismatches) > 0 {
		l := make([]any, 0, len(m.Mismatches))
		for _, mm := range m.Mismatches {
			golden := make([]any, len(mm.GoldenValues))
			for i, g := range mm.GoldenValues {
				golden[i] = g
			}
			l = append(l, map[string]any{
				"index":         float64(mm.Index),
				"source":        mm.Source,
				"golden_size":   float64(mm.GoldenSize),
				"golden_values": golden,
				"runtime_size":  float64(mm.RuntimeSize),
				"runtime_value": mm.RuntimeValue,
			})
		}
		c["x-nvidia-mismatch-measurement-records"] = l
	}
}

func setRIMClaims(c map[string]any, p string, r *RIMStatus) {
	names := []string{"-fetched", "-schema-validated", "-signature-verified", "-version-match", "-measurements-available"}
	if r == nil {
		for _, n := range names {
			c[p+n] = nil
		}
		c[p+"-cert-chain"] = nil
		return
	}
	vals := []bool{r.Fetched, r.SchemaValidated, r.SignatureVerified, r.VersionMatch, r.MeasurementsAvailable}
	for i, n := range names {
		c[p+n] = vals[i]
	}
	if r.CertChain != nil {
		c[p+"-cert-chain"] = certChainClaim(r.CertChain, "")
	} else {
		c[p+"-cert-chain"] = nil
	}
	if r.ID != "" {
		c[p+"-id"] = r.ID
	}
	if r.Error != "" {
		c[p+"-error"] = r.Error
	}
}

// pdiClaims adds the PPCIE topology claims NRAS emits: for GPUs the unique
// link PDIs (opaque 22) byte-reversed in upper case; for switches the own
// PDI (opaque 22) and the first 8 GPU PDIs of opaque 26, upper case.
func (s *deviceState) pdiClaims(c map[string]any) {
	if s.arch.IsSwitch() {
		if b, ok := s.report.Field(OpaqueSwitchPDI); ok && len(b) == switchPDISize {
			c["x-nvidia-switch-pdi"] = strings.ToUpper(hex.EncodeToString(b))
		}
		if b, ok := s.report.Field(OpaqueSwitchGPUPDIs); ok {
			var l []any
			for i := 0; i+switchPDISize <= len(b) && len(l) < 8; i += switchPDISize {
				l = append(l, strings.ToUpper(hex.EncodeToString(b[i:i+switchPDISize])))
			}
			c["x-nvidia-switch-gpu-pdis"] = l
		}
		return
	}
	b, ok := s.report.Field(OpaqueSwitchPDI)
	if !ok || len(b)%switchPDISize != 0 {
		return
	}
	seen := map[string]bool{}
	l := []any{}
	for i := 0; i < len(b); i += switchPDISize {
		r := make([]byte, switchPDISize)
		for j := range r {
			r[j] = b[i+switchPDISize-1-j]
		}
		h := strings.ToUpper(hex.EncodeToString(r))
		if !seen[h] {
			seen[h] = true
			l = append(l, h)
		}
	}
	c["x-nvidia-gpu-switch-pdis"] = l
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
