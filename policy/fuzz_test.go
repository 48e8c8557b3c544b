package policy

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/sigil-attestation/sigil/ear"
)

// FuzzDefaultPolicies feeds arbitrary JSON documents to the default appraisal
// policies and the default resource policy: evaluation must not panic, and a
// successful appraisal always sets all eight claims.
func FuzzDefaultPolicies(f *testing.F) {
	for _, name := range []string{"sample_input.json", "tdx_input.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"snp":{"evidence":{"measurement":1,"policy":[]}}}`))
	f.Add([]byte(`{"nvidia":{"x-nvidia-gpu-attestation-report-cert-chain":null}}`))
	f.Add([]byte(`{"init_data_claims":{"agent_policy_claims":{"containers":{"a":{"OCI":{"Process":{"User":{"UID":"x"}}}}}}}}`))
	f.Add([]byte(`{"submods":{"cpu0":{"ear.veraison.annotated-evidence":{"sample":0}}}}`))
	var pols []*Appraisal
	for id, text := range DefaultAppraisalPolicies() {
		pols = append(pols, mustAppraisal(f, id, text))
	}
	res := mustResource(f, ResourceDefault)
	rv := newRV(map[string]string{"svn": `["1"]`, "launch_digest": `null`, "major_version": `"1"`})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in map[string]any
		if json.Unmarshal(data, &in) != nil {
			return
		}
		for _, p := range pols {
			out, err := p.Evaluate(context.Background(), in, rv, true)
			if err != nil {
				continue
			}
			for _, n := range ear.ClaimNames() {
				if _, ok := out.TrustVector.Get(n); !ok {
					t.Errorf("%s: claim %s not set", p.ID(), n)
				}
			}
			if !out.TrustVector.Status().Valid() || len(out.Explanation) != 8 {
				t.Errorf("%s: status %q, %d explanations", p.ID(), out.TrustVector.Status(), len(out.Explanation))
			}
		}
		if _, err := res.Allow(context.Background(), in, resourceReq); err != nil {
			t.Errorf("resource policy: %v", err)
		}
	})
}
