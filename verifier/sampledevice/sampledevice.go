// Package sampledevice verifies evidence of Trustee's "sampledevice" TEE, the
// additional-device counterpart of sample (see package sample for the
// evidence format). It is unprotected and exists for tests and demos.
//
// The report data is checked exactly as sample does; init-data is ignored.
// Claims (class "gpu"): svn and report_data (the base64 string as received).
package sampledevice

import (
	"context"
	"fmt"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/sample"
)

// Class is the class of the result Verify returns.
const Class = "gpu"

// Verifier verifies sampledevice evidence.
type Verifier struct{}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a sampledevice Verifier.
func New() *Verifier { return &Verifier{} }

// Verify implements verifier.Verifier.
func (*Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := sample.ParseEvidence(evidence)
	if err != nil {
		return nil, fmt.Errorf("sampledevice: %w", err)
	}
	if err := ev.CheckReportData(exp.ReportData); err != nil {
		return nil, fmt.Errorf("sampledevice: %w", err)
	}
	return []verifier.Result{{
		Class:  Class,
		Claims: map[string]any{"svn": ev.SVN, "report_data": ev.ReportData},
	}}, nil
}
