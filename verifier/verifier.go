// Package verifier defines the contract between the attestation service and
// the per-TEE evidence verifiers (one subpackage each).
//
// A verifier answers "is this evidence genuine and bound to this request?"
// and turns it into claims. It does not decide whether the claims are
// acceptable: that is the appraisal policy's job.
package verifier

import "context"

// Expected holds the values the evidence must be bound to. A nil field is not
// checked.
type Expected struct {
	// ReportData is the runtime-data digest (or raw bytes) the TEE must have
	// put in its report; each verifier pads or truncates it to its field size.
	ReportData []byte
	// InitDataDigest is the init-data digest the TEE must have measured.
	InitDataDigest []byte
}

// Result is one appraisable unit produced from evidence: the claims and the
// class ("cpu", "gpu", "switch", ...) that selects the policy default_<class>.
//
// Claims may contain "report_data" and "init_data"; the attestation service
// hoists those to the top level of the policy input.
type Result struct {
	Class  string
	Claims map[string]any
	// RawClaims names top-level claims that echo raw evidence (e.g. a
	// device's full measurement list). The appraisal policy sees them; the
	// token carries them only with verbose_token, keeping multi-device
	// tokens small enough for an HTTP header.
	RawClaims []string
}

// Verifier verifies evidence of one TEE type.
type Verifier interface {
	// Verify checks evidence (the JSON value the attester produced) and its
	// binding to exp, returning one or more results. An error means the
	// evidence is not genuine, malformed, or not bound to exp.
	Verify(ctx context.Context, evidence []byte, exp Expected) ([]Result, error)
}
