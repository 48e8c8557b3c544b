// Package sample verifies evidence of Trustee's "sample" TEE: an
// unprotected JSON document that a guest without real TEE hardware produces.
// It proves nothing about the platform; it exists for tests and demos.
//
// Evidence: {"svn":"<string>","report_data":"<standard base64, padded>"}.
// report_data defaults to "" when missing. Claims (class "cpu"): svn,
// report_data (the base64 string as received), launch_digest "abcde",
// platform_version {major 1, minor 4}, debug false, and init_data (standard
// base64 of the expected init-data digest) when one is expected. The sample
// TEE cannot measure init-data, so that digest is reported, not checked.
//
// Numbers in claims are json.Number, so they marshal as JSON numbers and
// convert exactly to Rego numbers (policies compare platform_version.major
// == 1).
package sample

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigil-attestation/sigil/verifier"
)

// Class is the class of the result Verify returns.
const Class = "cpu"

// Evidence is parsed sample (or sampledevice) evidence.
type Evidence struct {
	// SVN is the security version number string.
	SVN string
	// ReportData is the base64 text as received ("" when absent).
	ReportData string
	// ReportDataBytes is ReportData decoded.
	ReportDataBytes []byte
}

// ErrReportDataMismatch is returned when the evidence report data differs
// from the expected one.
var ErrReportDataMismatch = errors.New("report data mismatch")

// ParseEvidence decodes sample-shaped evidence: a JSON object with a string
// "svn" (required) and a string "report_data" (optional, standard base64
// with padding, as Trustee decodes it). Other members are ignored.
func ParseEvidence(evidence []byte) (*Evidence, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(evidence, &members); err != nil {
		return nil, fmt.Errorf("parse evidence: %w", err)
	}
	if members == nil {
		return nil, errors.New("parse evidence: not a JSON object")
	}
	var ev Evidence
	svn, ok := members["svn"]
	if !ok {
		return nil, errors.New(`parse evidence: missing field "svn"`)
	}
	if err := unmarshalString(svn, &ev.SVN); err != nil {
		return nil, fmt.Errorf("parse evidence: svn: %w", err)
	}
	if rd, ok := members["report_data"]; ok {
		if err := unmarshalString(rd, &ev.ReportData); err != nil {
			return nil, fmt.Errorf("parse evidence: report_data: %w", err)
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(ev.ReportData)
	if err != nil {
		return nil, fmt.Errorf("parse evidence: report_data: %w", err)
	}
	ev.ReportDataBytes = b
	return &ev, nil
}

func unmarshalString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return errors.New("not a JSON string")
	}
	return json.Unmarshal(raw, dst)
}

// CheckReportData compares the decoded report data with expected exactly (no
// padding or truncation). A nil expected is not checked.
func (e *Evidence) CheckReportData(expected []byte) error {
	if expected == nil {
		return nil
	}
	if !bytes.Equal(e.ReportDataBytes, expected) {
		return ErrReportDataMismatch
	}
	return nil
}

// Verifier verifies sample evidence.
type Verifier struct{}

var _ verifier.Verifier = (*Verifier)(nil)

// New returns a sample Verifier.
func New() *Verifier { return &Verifier{} }

// Verify implements verifier.Verifier.
func (*Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ev, err := ParseEvidence(evidence)
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	if err := ev.CheckReportData(exp.ReportData); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	claims := map[string]any{
		"svn":           ev.SVN,
		"report_data":   ev.ReportData,
		"launch_digest": "abcde",
		"platform_version": map[string]any{
			"major": json.Number("1"),
			"minor": json.Number("4"),
		},
		"debug": false,
	}
	if exp.InitDataDigest != nil {
		claims["init_data"] = base64.StdEncoding.EncodeToString(exp.InitDataDigest)
	}
	return []verifier.Result{{Class: Class, Claims: claims}}, nil
}
