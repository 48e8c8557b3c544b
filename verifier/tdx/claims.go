package tdx

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/sigil-attestation/sigil/eventlog"
	"github.com/sigil-attestation/sigil/verifier/tdx/pcs"
)

// TCB status values this package itself produces (others come from the
// evaluator).
const (
	TCBStatusUnknown = "Unknown"
	TCBStatusRevoked = "Revoked"
)

// TD attribute bits Trustee reports under "td_attributes".
var tdAttributeFlags = []struct {
	name string
	bit  uint
}{
	{"debug", 0},
	{"septve_disable", 28},
	{"protection_keys", 30},
	{"key_locker", 31},
	{"perfmon", 63},
}

// BuildClaims returns the parsed-evidence claims Trustee's TDX verifier
// emits for a quote, its PCK extension (for platform_instance_id; may be
// nil) and an event log (for uefi_event_logs; may be nil):
//
//	quote.header.{version,att_key_type,tee_type,reserved,vendor_id,user_data}
//	quote.body.{tcb_svn,mr_seam,mrsigner_seam,seam_attributes,td_attributes,
//	  xfam,mr_td,mr_config_id,mr_owner,mr_owner_config,rtmr_0..3,report_data
//	  [,tee_tcb_svn2,mr_servicetd]}
//	quote.{type,size}                      (version 5 only)
//	td_attributes.{debug,septve_disable,protection_keys,key_locker,perfmon}
//	report_data, init_data (= mr_config_id)
//	platform_instance_id                   (byte-reversed, as Trustee prints it)
//	uefi_event_logs                        (only with an event log)
//
// Byte strings are lower-case hex. It checks nothing.
func BuildClaims(q *Quote, pck *PCKExtensions, log *eventlog.Log) map[string]any {
	h := &q.Header
	var ver [2]byte
	binary.LittleEndian.PutUint16(ver[:], h.Version)
	var akt [2]byte
	binary.LittleEndian.PutUint16(akt[:], h.AttKeyType)
	var tee [4]byte
	binary.LittleEndian.PutUint32(tee[:], h.TeeType)
	header := map[string]any{
		"version":      hex.EncodeToString(ver[:]),
		"att_key_type": hex.EncodeToString(akt[:]),
		"tee_type":     hex.EncodeToString(tee[:]),
		"reserved":     hex.EncodeToString(h.Reserved[:]),
		"vendor_id":    hex.EncodeToString(h.VendorID[:]),
		"user_data":    hex.EncodeToString(h.UserData[:]),
	}
	b := &q.Body
	body := map[string]any{
		"tcb_svn":         hex.EncodeToString(b.TeeTCBSVN[:]),
		"mr_seam":         hex.EncodeToString(b.MRSeam[:]),
		"mrsigner_seam":   hex.EncodeToString(b.MRSignerSeam[:]),
		"seam_attributes": hex.EncodeToString(b.SeamAttributes[:]),
		"td_attributes":   hex.EncodeToString(b.TDAttributes[:]),
		"xfam":            hex.EncodeToString(b.XFAM[:]),
		"mr_td":           hex.EncodeToString(b.MRTD[:]),
		"mr_config_id":    hex.EncodeToString(b.MRConfigID[:]),
		"mr_owner":        hex.EncodeToString(b.MROwner[:]),
		"mr_owner_config": hex.EncodeToString(b.MROwnerConfig[:]),
		"rtmr_0":          hex.EncodeToString(b.RTMR[0][:]),
		"rtmr_1":          hex.EncodeToString(b.RTMR[1][:]),
		"rtmr_2":          hex.EncodeToString(b.RTMR[2][:]),
		"rtmr_3":          hex.EncodeToString(b.RTMR[3][:]),
		"report_data":     hex.EncodeToString(b.ReportData[:]),
	}
	if b.TDX15 {
		body["tee_tcb_svn2"] = hex.EncodeToString(b.TeeTCBSVN2[:])
		body["mr_servicetd"] = hex.EncodeToString(b.MRServiceTD[:])
	}
	quote := map[string]any{"header": header, "body": body}
	if h.Version == 5 {
		var t [2]byte
		binary.LittleEndian.PutUint16(t[:], q.BodyType)
		var s [4]byte
		binary.LittleEndian.PutUint32(s[:], q.BodySize)
		quote["type"] = hex.EncodeToString(t[:])
		quote["size"] = hex.EncodeToString(s[:])
	}

	attrs := binary.LittleEndian.Uint64(b.TDAttributes[:])
	tdAttrs := make(map[string]any, len(tdAttributeFlags))
	for _, f := range tdAttributeFlags {
		tdAttrs[f.name] = attrs&(1<<f.bit) != 0
	}

	claims := map[string]any{
		"quote":         quote,
		"td_attributes": tdAttrs,
		"report_data":   hex.EncodeToString(b.ReportData[:]),
		"init_data":     hex.EncodeToString(b.MRConfigID[:]),
	}
	if pck != nil && pck.PlatformInstanceID != nil {
		id := slices.Clone(pck.PlatformInstanceID)
		slices.Reverse(id)
		claims["platform_instance_id"] = hex.EncodeToString(id)
	}
	if log != nil {
		claims["uefi_event_logs"] = log.Claims()
	}
	return claims
}

// sgxTypeName is the QVL/Trustee name of an SGX type.
func sgxTypeName(t int) string {
	switch t {
	case SGXTypeStandard:
		return "Standard"
	case SGXTypeScalable:
		return "Scalable"
	case SGXTypeScalableWithIntegrity:
		return "Scalable with Integrity"
	}
	return fmt.Sprintf("Unknown (%d)", t)
}

// pckClaims are the supplemental claims Trustee takes from QVL that derive
// from the PCK certificate chain alone: platform_provider_id (the PPID),
// sgx_type, is_dynamic_platform / is_cached_keys / is_smt_enabled (for
// scalable platforms, when the certificate carries them) and root_key_id.
func pckClaims(vq *VerifiedQuote) map[string]any {
	c := map[string]any{
		"platform_provider_id": hex.EncodeToString(vq.PCK.PPID),
		"sgx_type":             sgxTypeName(vq.PCK.SGXType),
	}
	if vq.PCK.SGXType > 0 {
		for name, flag := range map[string]*bool{
			"is_dynamic_platform": vq.PCK.DynamicPlatform,
			"is_cached_keys":      vq.PCK.CachedKeys,
			"is_smt_enabled":      vq.PCK.SMTEnabled,
		} {
			if flag != nil {
				c[name] = *flag
			}
		}
	}
	if id := rootKeyID(vq.Chain); id != "" {
		c["root_key_id"] = id
	}
	return c
}

// PlatformTCB returns the TCB inputs of a verified quote for a
// pcs.Evaluator, including the verified PCK chain so that the evaluator can
// check the PCK and Root CA CRLs.
func PlatformTCB(vq *VerifiedQuote) pcs.PlatformTCB {
	q, x := vq.Quote, vq.PCK
	return pcs.PlatformTCB{
		FMSPC:          slices.Clone(x.FMSPC),
		PCEID:          slices.Clone(x.PCEID),
		PCESVN:         x.PCESVN,
		CPUSVN:         x.TCBComponents,
		TeeTCBSVN:      q.Body.TeeTCBSVN,
		QEISVSVN:       q.QEReport.ISVSVN,
		QEMRSIGNER:     q.QEReport.MRSigner,
		QEISVPRODID:    q.QEReport.ISVProdID,
		QEMiscSelect:   q.QEReport.MiscSelect,
		QEAttributes:   q.QEReport.Attributes,
		MRSignerSeam:   slices.Clone(q.Body.MRSignerSeam[:]),
		SeamAttributes: slices.Clone(q.Body.SeamAttributes[:]),
		PCKChain:       slices.Clone(vq.Chain),
	}
}

// evaluateTCB runs the configured evaluator and returns the collateral
// claims (pcs.TCBResult.Claims: tcb_status, tcb_date, advisory_ids,
// collateral_expiration_status "0"/"1", earliest/latest issue and
// expiration dates, tcb_eval_num, pck_crl_num, root_ca_crl_num,
// root_key_id). With no evaluator, or in Offline mode when collateral is
// unavailable or no TCB level matches, it returns tcb_status "Unknown" with
// tcb_status_reason; online those cases fail, as Trustee's QVL call does.
// A Revoked status or a revoked certificate fails with ErrRevoked.
func (v *Verifier) evaluateTCB(ctx context.Context, vq *VerifiedQuote) (map[string]any, error) {
	if v.tcb == nil {
		return unknownTCB("no TCB collateral evaluator configured"), nil
	}
	res, err := v.tcb.Evaluate(ctx, PlatformTCB(vq))
	switch {
	case err == nil:
	case errors.Is(err, pcs.ErrRevoked):
		return nil, fmt.Errorf("%w: %w", ErrRevoked, err)
	case v.offline && errors.Is(err, pcs.ErrCollateralUnavailable):
		v.log.WarnContext(ctx, "tdx: TCB collateral unavailable, reporting Unknown", "error", err)
		return unknownTCB(err.Error()), nil
	default:
		return nil, fmt.Errorf("%w: %w", ErrTCB, err)
	}
	switch res.Status {
	case TCBStatusRevoked:
		return nil, fmt.Errorf("%w: TCB status Revoked %s", ErrRevoked, res.Reason)
	case TCBStatusUnknown, "":
		reason := res.Reason
		if reason == "" {
			reason = "no TCB level matches the platform"
		}
		if !v.offline {
			return nil, fmt.Errorf("%w: %s", ErrTCB, reason)
		}
		return unknownTCB(reason), nil
	}
	c := res.Claims()
	if c["root_key_id"] == "" {
		delete(c, "root_key_id")
	}
	if res.Reason != "" {
		c["tcb_status_reason"] = res.Reason
	}
	return c, nil
}

func unknownTCB(reason string) map[string]any {
	return map[string]any{
		"tcb_status":        TCBStatusUnknown,
		"tcb_status_reason": reason,
		"advisory_ids":      []any{},
	}
}
