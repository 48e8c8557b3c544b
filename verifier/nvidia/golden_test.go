package nvidia

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
)

const (
	trusteeNonce = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
	trusteeUUID  = "1111-2222-33333-444444-555555"
)

// Trustee's golden local claims must be reproduced exactly (arch, uuid,
// measurements, config).
func TestTrusteeGoldenClaims(t *testing.T) {
	v := newVerifier(t, Options{})
	ev := evidenceJSON(t, device("HOPPER", trusteeUUID, readReport(t, "hopperAttestationReport.txt"), readFile(t, "hopper_cert_chain_case1.txt")))
	res, err := v.Verify(context.Background(), ev, verifier.Expected{ReportData: mustHex(t, trusteeNonce)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Class != "gpu" {
		t.Fatalf("results = %+v", res)
	}
	var want map[string]any
	if err := json.Unmarshal(readFile(t, "hopperAttestationReport-claims.txt"), &want); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for k := range want {
		got[k] = res[0].Claims[k]
	}
	// Compare through JSON so numbers have one representation.
	gb, _ := json.Marshal(got)
	var gotRT map[string]any
	if err := json.Unmarshal(gb, &gotRT); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotRT, want) {
		wb, _ := json.Marshal(want)
		t.Errorf("claims differ\n got %s\nwant %s", gb, wb)
	}
	c := res[0].Claims
	for k, w := range map[string]any{
		"x-nvidia-gpu-attestation-report-parsed":                true,
		"x-nvidia-gpu-attestation-report-signature-verified":    true,
		"x-nvidia-gpu-attestation-report-nonce-match":           true,
		"x-nvidia-gpu-attestation-report-cert-chain-fwid-match": true,
		"x-nvidia-gpu-arch-check":                               true,
		"x-nvidia-gpu-driver-version":                           "550.90.07",
		"x-nvidia-gpu-vbios-version":                            "96.00.9F.00.01",
		"hwmodel":                                               "GH100 A01 GSP BROM",
		"ueid":                                                  "478176379286082186618948445787393647364802107249",
		"eat_nonce":                                             trusteeNonce,
		"measres":                                               "not-checked",
		ClaimFWID:                                               "match",
		ClaimNonce:                                              "match",
	} {
		if !reflect.DeepEqual(c[k], w) {
			t.Errorf("%s = %#v, want %#v", k, c[k], w)
		}
	}
	if _, ok := c[ClaimErrors]; ok {
		t.Errorf("unexpected %s: %v", ClaimErrors, c[ClaimErrors])
	}
	cc := c["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
	if cc["x-nvidia-cert-status"] != "valid" || cc["x-nvidia-cert-ocsp-status"] != "not-checked" || cc["x-nvidia-cert-expiration-date"] != "9999-12-31T23:59:59Z" {
		t.Errorf("cert chain claim = %v", cc)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Errorf("claims not JSON-serialisable: %v", err)
	}
}
