// Package sample is the "sample" attester: software-only evidence for tests
// and development, as produced by the CoCo attestation agent when no TEE is
// present. It offers no security whatsoever.
//
// Primary evidence is {"svn":"1","report_data":"<std base64 of the digest>"};
// with the sample device enabled the additional evidence is the string
// {"sampledevice":{"svn":"2","report_data":"<std base64 of the device digest>"}}.
// The report data is embedded as given (no padding or truncation).
package sample

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/protocol"
)

// Security versions reported by the sample TEE and the sample device.
const (
	SVN       = "1"
	DeviceSVN = "2"
)

// Evidence is the evidence of the sample TEE and of the sample device.
type Evidence struct {
	SVN        string `json:"svn"`
	ReportData string `json:"report_data"`
}

// Attester is a client.EvidenceProvider for the sample TEE, optionally with
// one sample device.
type Attester struct {
	withDevice bool
}

var _ client.EvidenceProvider = (*Attester)(nil)

// New returns the sample attester; withDevice adds the sample device
// (the guest components enable it with ENABLE_SAMPLE_DEVICE).
func New(withDevice bool) *Attester { return &Attester{withDevice: withDevice} }

// Tee returns "sample".
func (a *Attester) Tee() string { return protocol.TeeSample }

// PrimaryEvidence returns {"svn":"1","report_data":"<b64>"}.
func (a *Attester) PrimaryEvidence(ctx context.Context, reportData []byte) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return marshal(SVN, reportData)
}

// AdditionalEvidence returns "" without the device, else the JSON object
// {"sampledevice": <device evidence>} as a string.
func (a *Attester) AdditionalEvidence(ctx context.Context, reportData []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !a.withDevice {
		return "", nil
	}
	dev, err := marshal(DeviceSVN, reportData)
	if err != nil {
		return "", err
	}
	out, err := json.Marshal(map[string]json.RawMessage{protocol.TeeSampleDevice: dev})
	if err != nil {
		return "", fmt.Errorf("sample device evidence: %w", err)
	}
	return string(out), nil
}

func marshal(svn string, reportData []byte) (json.RawMessage, error) {
	out, err := json.Marshal(Evidence{SVN: svn, ReportData: base64.StdEncoding.EncodeToString(reportData)})
	if err != nil {
		return nil, fmt.Errorf("sample evidence: %w", err)
	}
	return out, nil
}
