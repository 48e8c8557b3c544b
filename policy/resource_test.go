package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/sigil-attestation/sigil/ear"
)

var resourceReq = ResourceData{Plugin: "resource", ResourcePath: []string{"default", "test", "secret"}, Query: map[string]string{}}

func mustResource(t testing.TB, text string) *Resource {
	t.Helper()
	p, err := CompileResource(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// evidence is one appraisable unit for attest().
type evidence struct {
	class  string // policy class: cpu, gpu
	policy *Appraisal
	input  map[string]any
}

// attest runs the appraisal policies the way the attestation service does,
// issues a signed EAR and returns its decoded claims: the resource policy's
// input.
func attest(t testing.TB, rv ReferenceValues, evs ...evidence) map[string]any {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	broker, err := ear.NewBroker(ear.BrokerConfig{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	subs := map[string]ear.Submod{}
	counts := map[string]int{}
	for _, ev := range evs {
		out, err := ev.policy.Evaluate(context.Background(), ev.input, rv, false)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s%d", ev.class, counts[ev.class])
		counts[ev.class]++
		subs[name] = ear.Submod{TrustVector: out.TrustVector, PolicyID: "default",
			AnnotatedEvidence: ev.input, Extensions: out.ExtensionMap()}
	}
	tok, err := broker.Issue(subs)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// Test-only resource policies from Trustee's integration tests, written in
// its (Regorus) dialect.
const (
	cpuNotContraindicated = `package policy
default allow = false
allow if {
	input["submods"]["cpu0"]["ear.status"] != "contraindicated"
}
`
	cpuAndGPUNotContraindicated = `package policy
import rego.v1
default allow = false
allow if {
	input.submods.cpu0["ear.status"] != "contraindicated"
	input.submods.gpu0["ear.status"] != "contraindicated"
}
`
	// The sample device rule used by the integration tests.
	sampleDevicePolicy = `package policy
import rego.v1
default hardware := 97
hardware := 2 if {
	input.sampledevice.svn in query_reference_value("device_svn")
}
trust_claims := {"hardware": hardware}
`
	// A contraindicated CPU policy.
	contraindicatedCPU = `package policy
import rego.v1
trust_claims := {"hardware": 97}
`
)

func TestGetResourceScenarios(t *testing.T) {
	cpu := defaultPolicy(t, "default_cpu")
	sampleIn := loadJSON(t, "sample_input.json")
	deviceIn := map[string]any{"sampledevice": map[string]any{"svn": "2"}, "report_data": "eA=="}
	gpuDefault := defaultPolicy(t, "default_gpu")
	gpuTest := mustAppraisal(t, "default_gpu", sampleDevicePolicy)
	withDevice := with(sampleRVs, "device_svn", `["2"]`)

	tests := []struct {
		name     string
		resource string
		rvs      map[string]string
		evs      []evidence
		want     bool
	}{
		{"1 allow-all with contraindicated cpu", ResourceAllowAll, nil,
			[]evidence{{"cpu", mustAppraisal(t, "default_cpu", contraindicatedCPU), sampleIn}}, true},
		{"2 deny-all", ResourceDenyAll, sampleRVs, []evidence{{"cpu", cpu, sampleIn}}, false},
		{"3 not contraindicated, no reference values", cpuNotContraindicated, nil, []evidence{{"cpu", cpu, sampleIn}}, false},
		{"4 not contraindicated, reference values", cpuNotContraindicated, sampleRVs, []evidence{{"cpu", cpu, sampleIn}}, true},
		{"5 sample device without device_svn", cpuAndGPUNotContraindicated, sampleRVs,
			[]evidence{{"cpu", cpu, sampleIn}, {"gpu", gpuTest, deviceIn}}, false},
		{"6 sample device with device_svn", cpuAndGPUNotContraindicated, withDevice,
			[]evidence{{"cpu", cpu, sampleIn}, {"gpu", gpuTest, deviceIn}}, true},
		{"5 default gpu policy without device_svn", cpuAndGPUNotContraindicated, sampleRVs,
			[]evidence{{"cpu", cpu, sampleIn}, {"gpu", gpuDefault, deviceIn}}, false},
		{"6 default gpu policy with device_svn", cpuAndGPUNotContraindicated, withDevice,
			[]evidence{{"cpu", cpu, sampleIn}, {"gpu", gpuDefault, deviceIn}}, true},
		{"6 without the gpu submod", cpuAndGPUNotContraindicated, withDevice, []evidence{{"cpu", cpu, sampleIn}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := attest(t, newRV(tt.rvs), tt.evs...)
			got, err := mustResource(t, tt.resource).Allow(context.Background(), claims, resourceReq)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("allow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultResourcePolicies(t *testing.T) {
	cpu := defaultPolicy(t, "default_cpu")
	sample := attest(t, newRV(sampleRVs), evidence{"cpu", cpu, loadJSON(t, "sample_input.json")})
	tdx := attest(t, newRV(tdxRVs), evidence{"cpu", cpu, loadJSON(t, "tdx_input.json")})
	affirmingTDX := func() map[string]any {
		in := loadJSON(t, "tdx_input.json")
		obj(in, "tdx", "td_attributes")["debug"] = false
		return attest(t, newRV(tdxRVs), evidence{"cpu", cpu, in})
	}()
	mixed := attest(t, newRV(sampleRVs), evidence{"cpu", cpu, loadJSON(t, "sample_input.json")},
		evidence{"gpu", defaultPolicy(t, "default_gpu"), map[string]any{"sampledevice": map[string]any{"svn": "2"}}})
	tdxWithBadGPU := func() map[string]any {
		in := loadJSON(t, "tdx_input.json")
		obj(in, "tdx", "td_attributes")["debug"] = false
		return attest(t, newRV(tdxRVs), evidence{"cpu", cpu, in},
			evidence{"gpu", defaultPolicy(t, "default_gpu"), map[string]any{"sampledevice": map[string]any{"svn": "2"}}})
	}()
	noCPU := map[string]any{"submods": map[string]any{"gpu0": obj(tdxWithBadGPU, "submods", "cpu0")}}
	other := ResourceData{Plugin: "echo", ResourcePath: []string{"x"}}

	tests := []struct {
		name   string
		policy string
		claims any
		data   ResourceData
		want   bool
	}{
		{"default denies sample", ResourceDefault, sample, resourceReq, false},
		{"default denies a debug tdx (warning)", ResourceDefault, tdx, resourceReq, false},
		{"default allows an affirming tdx", ResourceDefault, affirmingTDX, resourceReq, true},
		{"default denies an affirming tdx next to a contraindicated gpu", ResourceDefault, tdxWithBadGPU, resourceReq, false},
		{"default denies an affirming token without cpu0", ResourceDefault, noCPU, resourceReq, false},
		{"default denies other plugins", ResourceDefault, affirmingTDX, other, false},
		{"default with no claims", ResourceDefault, map[string]any{}, resourceReq, false},
		{"default with nil claims", ResourceDefault, nil, resourceReq, false},
		{"trustee default allows a debug tdx", ResourceTrusteeDefault, tdx, resourceReq, true},
		{"trustee default allows a tdx next to a contraindicated gpu", ResourceTrusteeDefault, tdxWithBadGPU, resourceReq, true},
		{"trustee default with no claims", ResourceTrusteeDefault, map[string]any{}, resourceReq, true},
		{"trustee default denies sample", ResourceTrusteeDefault, sample, resourceReq, false},
		{"allow_all allows sample", ResourceAllowAll, sample, resourceReq, true},
		{"allow_all denies other plugins", ResourceAllowAll, sample, other, false},
		{"deny_all", ResourceDenyAll, tdx, resourceReq, false},
		{"affirming sample", ResourceAffirming, sample, resourceReq, true},
		{"affirming tdx debug (warning)", ResourceAffirming, tdx, resourceReq, false},
		{"affirming tdx", ResourceAffirming, affirmingTDX, resourceReq, true},
		{"affirming with a contraindicated gpu", ResourceAffirming, mixed, resourceReq, false},
		{"affirming without submods", ResourceAffirming, map[string]any{"submods": map[string]any{}}, resourceReq, false},
		{"affirming with no claims at all", ResourceAffirming, nil, resourceReq, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustResource(t, tt.policy).Allow(context.Background(), tt.claims, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("allow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResourceDataShapes(t *testing.T) {
	claims := map[string]any{"submods": map[string]any{"cpu0": map[string]any{
		"ear.status":                      "affirming",
		"ear.veraison.annotated-evidence": map[string]any{"sample": map[string]any{"svn": 2, "productId": "p1"}},
	}}}
	ae := `input.submods.cpu0["ear.veraison.annotated-evidence"]`
	tests := []struct {
		name   string
		policy string
		data   ResourceData
		want   bool
	}{
		{"plugin", `allow if data.plugin == "resource"`, resourceReq, true},
		{"path element", `allow if data["resource-path"][1] == "test"`, resourceReq, true},
		{"path element mismatch", `allow if data["resource-path"][1] == "nope"`, resourceReq, false},
		{"path length", `allow if count(data["resource-path"]) == 3`, resourceReq, true},
		{"path bound to claims", `allow if { count(data["resource-path"]) == 3; ` + ae + `.sample.productId == data["resource-path"][1] }`,
			ResourceData{Plugin: "resource", ResourcePath: []string{"repo", "p1", "key"}}, true},
		{"path bound to claims mismatch", `allow if { ` + ae + `.sample.productId == data["resource-path"][1] }`, resourceReq, false},
		{"svn gated", `allow if { {"secret1": 2, "secret2": 3}[data["resource-path"][2]] <= ` + ae + `.sample.svn }`,
			ResourceData{Plugin: "resource", ResourcePath: []string{"a", "b", "secret1"}}, true},
		{"svn gated too new", `allow if { {"secret1": 2, "secret2": 3}[data["resource-path"][2]] <= ` + ae + `.sample.svn }`,
			ResourceData{Plugin: "resource", ResourcePath: []string{"a", "b", "secret2"}}, false},
		{"query value", `allow if data.query.version == "1.0.0"`,
			ResourceData{Plugin: "plugin1", ResourcePath: []string{"para", "meters"}, Query: map[string]string{"version": "1.0.0"}}, true},
		{"query absent", `allow if data.query.version == "1.0.0"`, resourceReq, false},
		{"nil query is an empty object", `allow if { is_object(data.query); count(data.query) == 0 }`, ResourceData{Plugin: "resource"}, true},
		{"nil path is an empty array", `allow if { is_array(data["resource-path"]); count(data["resource-path"]) == 0 }`, ResourceData{Plugin: "resource"}, true},
		{"whole data document", `allow if { data.plugin == "resource"; data["resource-path"] == ["default", "test", "secret"] }`, resourceReq, true},
		{"helper rule reading data", "p := data.plugin\nallow if p == \"resource\"", resourceReq, true},
		{"non-boolean allow", `allow := "yes"`, resourceReq, false},
		{"undefined allow", `allow if false`, resourceReq, false},
		{"allow without default, condition fails", `allow if data.plugin == "other"`, resourceReq, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustResource(t, "package policy\nimport rego.v1\n"+tt.policy+"\n")
			got, err := p.Allow(context.Background(), claims, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("allow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResourceDialects(t *testing.T) {
	for name, text := range map[string]string{
		"v0": `package policy
default allow = false
allow { data.plugin == "resource"; input.submods.cpu0["ear.status"] == "affirming" }
`,
		"v0 with in": `package policy
default allow = false
allow { "affirming" in [input.submods.cpu0["ear.status"]]; data.plugin == "resource" }
`,
		"v1 without import": `package policy
default allow := false
allow if { data.plugin == "resource"; input.submods.cpu0["ear.status"] == "affirming" }
`,
	} {
		t.Run(name, func(t *testing.T) {
			p := mustResource(t, text)
			for _, tt := range []struct {
				status string
				want   bool
			}{{"affirming", true}, {"warning", false}} {
				claims := map[string]any{"submods": map[string]any{"cpu0": map[string]any{"ear.status": tt.status}}}
				got, err := p.Allow(context.Background(), claims, resourceReq)
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("%s: allow = %v", tt.status, got)
				}
			}
		})
	}
}

// The init-data scenarios of Trustee's integration tests, on the token
// produced from testdata/tdx_input.json.
func TestInitDataPolicies(t *testing.T) {
	in := loadJSON(t, "tdx_input.json")
	digest := in["init_data"].(string)
	claims := attest(t, nil, evidence{"cpu", defaultPolicy(t, "default_cpu"), in})
	ae := `input.submods.cpu0["ear.veraison.annotated-evidence"]`
	tests := []struct {
		name   string
		policy string
		want   bool
	}{
		{"init_data digest pinned", `allow if ` + ae + `.init_data == "` + digest + `"`, true},
		{"init_data digest differs", `allow if ` + ae + `.init_data == "AAAA"`, false},
		{"cdh.toml as JSON", `allow if startswith(` + ae + `.init_data_claims["cdh.toml"].image.extra_root_certificates[0], "-----BEGIN CERTIFICATE-----")`, true},
		{"agent policy container args", `allow if ` + ae + `.init_data_claims.agent_policy_claims.containers[1].OCI.Process.Args[0] == "/opt/bitnami/scripts/nginx/entrypoint.sh"`, true},
		{"identifiers extension", `allow if input.submods.cpu0["ear.trustee.identifiers"].validated == {"container_images": ["bitnami/nginx:latest"], "container_uids": [65535, 1001]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustResource(t, "package policy\nimport rego.v1\ndefault allow := false\n"+tt.policy+"\n").Allow(context.Background(), claims, resourceReq)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("allow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResourceConcurrentData(t *testing.T) {
	p := mustResource(t, "package policy\nimport rego.v1\nallow if { data[\"resource-path\"][2] == input.want; data.query.k == input.want }\n")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				mine := fmt.Sprintf("v%d-%d", i, j)
				d := ResourceData{Plugin: "resource", ResourcePath: []string{"a", "b", mine}, Query: map[string]string{"k": mine}}
				ok, err := p.Allow(context.Background(), map[string]any{"want": mine}, d)
				if err != nil || !ok {
					errs <- fmt.Errorf("%s: allow=%v err=%v", mine, ok, err)
					return
				}
				ok, err = p.Allow(context.Background(), map[string]any{"want": "other"}, d)
				if err != nil || ok {
					errs <- fmt.Errorf("%s: cross-request data leaked", mine)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestResourceAcceptsASTClaims(t *testing.T) {
	p := mustResource(t, ResourceAffirming)
	v, err := ast.InterfaceToValue(map[string]any{"submods": map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Allow(context.Background(), v, resourceReq)
	if err != nil || !got {
		t.Errorf("allow = %v, %v", got, err)
	}
}

func BenchmarkResourceAllow(b *testing.B) {
	in := loadJSON(b, "sample_input.json")
	claims := attest(b, newRV(sampleRVs), evidence{"cpu", defaultPolicy(b, "default_cpu"), in})
	tdx := attest(b, newRV(tdxRVs), evidence{"cpu", defaultPolicy(b, "default_cpu"), loadJSON(b, "tdx_input.json")})
	for _, bc := range []struct {
		name   string
		claims map[string]any
		want   bool
	}{{"sample", claims, false}, {"tdx", tdx, true}} {
		b.Run(bc.name, func(b *testing.B) {
			p := mustResource(b, ResourceDefault)
			b.ReportAllocs()
			for b.Loop() {
				ok, err := p.Allow(context.Background(), bc.claims, resourceReq)
				if err != nil || ok != bc.want {
					b.Fatalf("allow = %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkResourceDataDocument compares the evaluation cost of the "with"
// data overlay used by Resource against a data document fixed in a store
// (which would need a store write, and a lock, per request), with the claims
// already converted so that only evaluation is measured.
func BenchmarkResourceDataDocument(b *testing.B) {
	claims := attest(b, newRV(sampleRVs), evidence{"cpu", defaultPolicy(b, "default_cpu"), loadJSON(b, "tdx_input.json")})
	cv, err := ast.InterfaceToValue(claims)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("with-overlay", func(b *testing.B) {
		p := mustResource(b, ResourceDefault)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := p.Allow(context.Background(), cv, resourceReq); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("static-store", func(b *testing.B) {
		store := inmem.NewFromObject(map[string]any{"plugin": "resource",
			"resource-path": []any{"default", "test", "secret"}, "query": map[string]any{}})
		pq, err := rego.New(rego.Query("allow := data.policy.allow"), rego.Module("p.rego", ResourceDefault),
			rego.Store(store)).PrepareForEval(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(cv))
			if err != nil || len(rs) != 1 || rs[0].Bindings["allow"] != true {
				b.Fatal(rs, err)
			}
		}
	})
}
