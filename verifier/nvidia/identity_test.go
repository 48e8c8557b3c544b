package nvidia

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// TestDeclaredArchMustMatchCertificates: a device entry verifies only as
// the architecture its certificates name; the error says both.
func TestDeclaredArchMustMatchCertificates(t *testing.T) {
	hopper := readReport(t, "hopperAttestationReport.txt")
	hopperChain := readFile(t, "hopper_cert_chain_case1.txt")
	exp := verifier.Expected{ReportData: mustHex(t, trusteeNonce)}
	tests := []struct {
		arch    string
		wantErr bool
	}{
		{"HOPPER", false},
		{"hopper", false},
		{"LS10", true},
		{"BLACKWELL", true},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			d := device(tt.arch, "GPU-0", hopper, hopperChain)
			strict := newVerifier(t, Options{FailOnInvalidDevice: true})
			res, err := strict.Verify(context.Background(), evidenceJSON(t, d), exp)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("genuine Hopper declared %s: %v", tt.arch, err)
				}
				if res[0].Class != ClassGPU {
					t.Fatalf("class %q", res[0].Class)
				}
				return
			}
			if !errors.Is(err, ErrArchMismatch) {
				t.Fatalf("err = %v, want %v", err, ErrArchMismatch)
			}
			for _, want := range []string{"declares " + strings.ToUpper(tt.arch), "GH100 A01 GSP FMC LF", "names HOPPER"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			// Without FailOnInvalidDevice the device is recorded as not
			// genuine, never appraised.
			lenient := newVerifier(t, Options{Appraiser: &fakeAppraiser{res: &MeasurementResult{Success: true}}})
			res, err = lenient.Verify(context.Background(), evidenceJSON(t, d), exp)
			if err != nil {
				t.Fatal(err)
			}
			c := res[0].Claims
			p := Arch(strings.ToUpper(tt.arch)).claimPrefix()
			if c[p+"arch-check"] != false || c["measres"] != "not-checked" || c[ClaimErrors] == nil {
				t.Errorf("arch-check %v, measres %v, errors %v", c[p+"arch-check"], c["measres"], c[ClaimErrors])
			}
		})
	}
}

// TestDuplicateDevices: one device's evidence repeated in one attestation
// (as is, re-encoded, or declared as another kind) is an error in both
// modes, so a topology cannot be assembled from copies.
func TestDuplicateDevices(t *testing.T) {
	hopper := readReport(t, "hopperAttestationReport.txt")
	hopperChain := readFile(t, "hopper_cert_chain_case1.txt")
	gpu := device("HOPPER", "GPU-0", hopper, hopperChain)
	blackwell := device("BLACKWELL", "GPU-1", readReport(t, "gpu/blackwellAttestationReport.txt"), readFile(t, "gpu/blackwellCertChain.txt"))
	nvswitch := device("LS10", "SWITCH-0", readReport(t, "switch/switchAttestationReport.txt"), readFile(t, "switch/switchCertChain.txt"))

	reencoded := gpu
	reencoded.UUID = "GPU-7"
	reencoded.Evidence = base64.StdEncoding.EncodeToString(hopper)
	reencoded.Certificate = base64.StdEncoding.EncodeToString([]byte("\n" + string(hopperChain) + "\n"))
	asSwitch := gpu
	asSwitch.Arch, asSwitch.UUID = "LS10", "SWITCH-9"

	var ppcie Evidence
	if err := json.Unmarshal(realPPCIeEvidence(t), &ppcie); err != nil {
		t.Fatal(err)
	}
	if len(ppcie.Devices) != 12 {
		t.Fatalf("%d PPCIe devices", len(ppcie.Devices))
	}
	firstGPU, firstSwitch := ppcie.Devices[0], ppcie.Devices[8]
	var assembled []DeviceEvidence // 8 × one GPU + 4 × one switch
	for range PPCIeGPUCount {
		assembled = append(assembled, firstGPU)
	}
	for range PPCIeSwitchCount {
		assembled = append(assembled, firstSwitch)
	}
	oneRepeated := append([]DeviceEvidence(nil), ppcie.Devices...)
	oneRepeated[7] = oneRepeated[0]

	// Two fresh reports of one synthetic device: different bytes, one
	// leaf.
	h := newHierarchy(t)
	sd := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	sd1 := toDevice(sd.Entry("a", newReport(t, sd, nvidiatest.ReportOptions{Nonce: []byte{1}})))
	sd2 := toDevice(sd.Entry("b", newReport(t, sd, nvidiatest.ReportOptions{Nonce: []byte{1}})))
	other := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	sd3 := toDevice(other.Entry("c", newReport(t, other, nvidiatest.ReportOptions{Nonce: []byte{1}})))

	tests := []struct {
		name    string
		devs    []DeviceEvidence
		synth   bool
		nonce   string
		wantErr bool
	}{
		{name: "distinct devices", devs: []DeviceEvidence{gpu, blackwell, nvswitch}, nonce: trusteeNonce},
		{name: "real PPCIe set", devs: ppcie.Devices, nonce: ppcieNonce},
		{name: "same GPU twice", devs: []DeviceEvidence{gpu, gpu}, nonce: trusteeNonce, wantErr: true},
		{name: "same GPU re-encoded", devs: []DeviceEvidence{gpu, blackwell, reencoded}, nonce: trusteeNonce, wantErr: true},
		{name: "GPU also declared as a switch", devs: []DeviceEvidence{gpu, asSwitch}, nonce: trusteeNonce, wantErr: true},
		{name: "PPCIe set with one GPU repeated", devs: oneRepeated, nonce: ppcieNonce, wantErr: true},
		{name: "PPCIe topology assembled from one GPU and one switch", devs: assembled, nonce: ppcieNonce, wantErr: true},
		{name: "two reports from one device", devs: []DeviceEvidence{sd1, sd2}, synth: true, wantErr: true},
		{name: "two synthetic devices", devs: []DeviceEvidence{sd1, sd3}, synth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := verifier.Expected{}
			if tt.nonce != "" {
				exp.ReportData = mustHex(t, tt.nonce)
			}
			for _, strict := range []bool{false, true} {
				o := Options{FailOnInvalidDevice: strict}
				var v *Verifier
				if tt.synth {
					v = synthVerifier(t, h, o)
				} else {
					v = newVerifier(t, o)
				}
				res, err := v.Verify(context.Background(), evidenceJSON(t, tt.devs...), exp)
				if !tt.wantErr {
					if err != nil {
						t.Fatalf("strict=%v: %v", strict, err)
					}
					if len(res) < len(tt.devs) {
						t.Fatalf("strict=%v: %d results for %d devices", strict, len(res), len(tt.devs))
					}
					continue
				}
				if !errors.Is(err, ErrDuplicateDevice) {
					t.Fatalf("strict=%v: err = %v, want %v", strict, err, ErrDuplicateDevice)
				}
				if res != nil {
					t.Fatalf("strict=%v: results returned with the error", strict)
				}
			}
		})
	}
}
