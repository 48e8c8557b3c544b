package nvidia

import (
	"context"
	"errors"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// TestMeasresReasonWording: x-sigil-measres-reason says what happened; a
// failure with nothing compared is never worded as a mismatch, whatever
// the appraiser returns.
func TestMeasresReasonWording(t *testing.T) {
	h := newHierarchy(t)
	d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	rd := freshNonce("reason")
	dev := toDevice(d.Entry("g0", newReport(t, d, nvidiatest.ReportOptions{Nonce: rd[:32]})))
	mismatch := MeasurementMismatch{Index: 9, Source: "VBIOS", GoldenSize: 48, GoldenValues: []string{"aa"}, RuntimeSize: 48, RuntimeValue: "bb"}
	tests := []struct {
		name    string
		app     MeasurementAppraiser
		measres string
		want    string
	}{
		{"no appraiser", nil, "not-checked", "no measurement appraiser (RIM) configured"},
		{"appraiser error", &fakeAppraiser{err: errors.New("boom")}, "fail", "measurements not compared: boom"},
		{"no result", &fakeAppraiser{}, "fail", "measurements not compared: the measurement appraiser returned no result"},
		{"failure without reason or mismatches", &fakeAppraiser{res: &MeasurementResult{}}, "fail", "measurements not compared: the measurement appraiser gave no reason"},
		{"mismatches without reason", &fakeAppraiser{res: &MeasurementResult{Mismatches: []MeasurementMismatch{mismatch, {Index: 12}}}}, "fail", "2 measurements do not match the reference values (RIM indices 9, 12)"},
		{"appraiser's reason", &fakeAppraiser{res: &MeasurementResult{Reason: "measurements not compared: driver RIM X unusable (gone)"}}, "fail", "measurements not compared: driver RIM X unusable (gone)"},
		{"success", &fakeAppraiser{res: &MeasurementResult{Success: true}}, "success", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := synthVerifier(t, h, Options{Appraiser: tt.app})
			res, err := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: rd})
			if err != nil {
				t.Fatal(err)
			}
			c := res.Claims
			if c["measres"] != tt.measres {
				t.Errorf("measres %v, want %s", c["measres"], tt.measres)
			}
			got, ok := c[ClaimMeasresReason]
			if tt.want == "" {
				if ok {
					t.Errorf("reason %v on success", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("reason %q, want %q", got, tt.want)
			}
		})
	}
}
