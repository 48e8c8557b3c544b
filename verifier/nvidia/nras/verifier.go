package nras

import (
	"context"
	"errors"
	"fmt"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
)

// Verifier is the "nvidia" verifier in Remote mode: it sends the devices'
// evidence to NRAS (GPUs and switches in separate requests), verifies the
// detached EAT, and returns one result per device with NRAS's claims, plus
// the PPCIe topology result for a protected-PCIe device set. The claims
// carry NRAS's verdicts (measres, nonce match, …); the appraisal policy
// decides on them, exactly as for local results.
type Verifier struct {
	client *Client
	strict bool
}

// NewVerifier wraps a client. With strict, a device whose nonce NRAS did
// not match fails verification (sigil evaluate); otherwise the claim
// records it and the policy contraindicates the device.
func NewVerifier(c *Client, strict bool) *Verifier { return &Verifier{client: c, strict: strict} }

// Verify implements verifier.Verifier. Report data is required: NRAS
// checks the SPDM nonce against it (regularised to 32 bytes).
func (v *Verifier) Verify(ctx context.Context, evidence []byte, exp verifier.Expected) ([]verifier.Result, error) {
	if exp.ReportData == nil {
		return nil, errors.New("nvidia remote verification needs report data (the SPDM nonce)")
	}
	ev, err := nvidia.ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	// NRAS verifies each device on its own; one device repeated would count
	// several times (e.g. towards a PPCIe topology).
	if err := nvidia.CheckDistinctDevices(ev.Devices); err != nil {
		return nil, err
	}
	nonce := make([]byte, 32)
	copy(nonce, exp.ReportData)
	var gpus, switches []nvidia.DeviceEvidence
	for _, d := range ev.Devices {
		arch, err := nvidia.ParseArch(d.Arch)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", nvidia.ErrEvidence, err)
		}
		if arch.IsSwitch() {
			switches = append(switches, d)
		} else {
			gpus = append(gpus, d)
		}
	}
	var results []verifier.Result
	for _, group := range []struct {
		kind string
		devs []nvidia.DeviceEvidence
	}{{KindGPU, gpus}, {KindSwitch, switches}} {
		if len(group.devs) == 0 {
			continue
		}
		res, err := v.client.Attest(ctx, group.kind, nonce, group.devs)
		if err != nil {
			return nil, fmt.Errorf("NRAS %s attestation: %w", group.kind, err)
		}
		if v.strict {
			if err := res.CheckNonceMatch(); err != nil {
				return nil, err
			}
		}
		results = append(results, res.Results()...)
	}
	pp, err := nvidia.ValidatePPCIe(results)
	if err != nil && v.strict {
		return nil, err
	}
	if pp != nil {
		results = append(results, *pp)
	}
	return results, nil
}
