package policy

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/ear"
)

// vec is a compact expectation: executables, hardware, configuration (the
// other five claims must be 0).
type vec struct{ exe, hw, conf int8 }

func checkVector(t *testing.T, got ear.TrustVector, want vec, wantStatus ear.Status) {
	t.Helper()
	exp := map[string]int8{"executables": want.exe, "hardware": want.hw, "configuration": want.conf,
		"instance-identity": 0, "file-system": 0, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}
	for name, w := range exp {
		g, ok := got.Get(name)
		if !ok || g != w {
			t.Errorf("%s = %d (set %v), want %d", name, g, ok, w)
		}
	}
	if s := got.Status(); s != wantStatus {
		t.Errorf("status = %s, want %s", s, wantStatus)
	}
}

// clone deep-copies a JSON document so cases can mutate it.
func clone(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

var sampleRVs = map[string]string{
	"svn": `["1"]`, "launch_digest": `["abcde"]`, "major_version": `1`, "minimum_minor_version": `1`,
}

func with(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestDefaultCPUSample(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	base := loadJSON(t, "sample_input.json")
	tests := []struct {
		name   string
		rvs    map[string]string
		mutate func(map[string]any)
		want   vec
		status ear.Status
	}{
		{"no reference values", nil, nil, vec{33, 97, 2}, ear.StatusContraindicated},
		{"all reference values", sampleRVs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"svn not listed", with(sampleRVs, "svn", `["2"]`), nil, vec{3, 97, 2}, ear.StatusContraindicated},
		{"major version differs", with(sampleRVs, "major_version", `2`), nil, vec{3, 97, 2}, ear.StatusContraindicated},
		{"minor below minimum", with(sampleRVs, "minimum_minor_version", `5`), nil, vec{3, 97, 2}, ear.StatusContraindicated},
		{"minor equals minimum", with(sampleRVs, "minimum_minor_version", `4`), nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"launch digest unknown", with(sampleRVs, "launch_digest", `["fffff"]`), nil, vec{33, 2, 2}, ear.StatusWarning},
		{"debug on", sampleRVs, func(m map[string]any) { obj(m, "sample")["debug"] = true }, vec{3, 2, 36}, ear.StatusWarning},
		{"no TEE claims", sampleRVs, func(m map[string]any) { delete(m, "sample") }, vec{33, 97, 36}, ear.StatusContraindicated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := clone(t, base)
			if tt.mutate != nil {
				tt.mutate(in)
			}
			out, err := p.Evaluate(context.Background(), in, newRV(tt.rvs), false)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, out.TrustVector, tt.want, tt.status)
			if out.Explanation != nil {
				t.Error("explanation without explain")
			}
		})
	}
}

// tdxRVs matches testdata/tdx_input.json (the quote of Trustee's
// tdx_quote_4.dat).
var tdxRVs = map[string]string{
	"rtmr_1": `["559cfcf42716ed6c40a48a73d5acb7da255435012f0a9f00fbe8c1c57612ede486a5684c4c9ff3ddf52315fcdca3a596"]`,
	"rtmr_2": `["000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"]`,
	"mr_td":  `["705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031"]`,
	"xfam":   `["e742060000000000"]`,
}

func addKernelEvents(m map[string]any) {
	tdx := obj(m, "tdx")
	logs := tdx["uefi_event_logs"].([]any)
	logs = append(logs,
		map[string]any{"type_name": "EV_EFI_BOOT_SERVICES_APPLICATION",
			"details": map[string]any{"device_paths": []any{"PciRoot(0x0)", "File(kernel)"}},
			"digests": []any{map[string]any{"alg": "SHA-384", "digest": "aaaa"}}},
		map[string]any{"type_name": "EV_EVENT_TAG",
			"details": map[string]any{"string": "LOADED_IMAGE::LoadOptions"},
			"digests": []any{map[string]any{"alg": "SHA-384", "digest": "bbbb"}}},
	)
	tdx["uefi_event_logs"] = logs
}

func TestDefaultCPUTDX(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	base := loadJSON(t, "tdx_input.json")
	kernelRVs := with(tdxRVs, "tdvfkernel", `"aaaa"`, "tdvfkernelparams", `"bbbb"`)
	noDebug := func(m map[string]any) { obj(m, "tdx", "td_attributes")["debug"] = false }
	tests := []struct {
		name   string
		rvs    map[string]string
		mutate func(map[string]any)
		want   vec
		status ear.Status
	}{
		{"no reference values", nil, nil, vec{33, 97, 36}, ear.StatusContraindicated},
		// The quote is a debug TD and its log has no kernel event: GRUB branch.
		{"rtmrs only", tdxRVs, nil, vec{4, 2, 36}, ear.StatusWarning},
		{"debug off", tdxRVs, noDebug, vec{4, 2, 2}, ear.StatusAffirming},
		{"direct boot kernel logged", kernelRVs, func(m map[string]any) { noDebug(m); addKernelEvents(m) }, vec{3, 2, 2}, ear.StatusAffirming},
		{"kernel params digest differs", with(kernelRVs, "tdvfkernelparams", `"cccc"`), func(m map[string]any) { noDebug(m); addKernelEvents(m) }, vec{4, 2, 2}, ear.StatusAffirming},
		{"rtmr_2 unknown", with(kernelRVs, "rtmr_2", `["00"]`), addKernelEvents, vec{33, 2, 36}, ear.StatusWarning},
		{"tcb out of date", tdxRVs, func(m map[string]any) { obj(m, "tdx")["tcb_status"] = "OutOfDate" }, vec{4, 97, 36}, ear.StatusContraindicated},
		{"collateral expired", tdxRVs, func(m map[string]any) { obj(m, "tdx")["collateral_expiration_status"] = "1" }, vec{4, 97, 36}, ear.StatusContraindicated},
		{"not a TDX quote", tdxRVs, func(m map[string]any) { obj(m, "tdx", "quote", "header")["tee_type"] = "00000000" }, vec{4, 97, 36}, ear.StatusContraindicated},
		{"mr_td unknown", with(tdxRVs, "mr_td", `["00"]`), nil, vec{4, 97, 36}, ear.StatusContraindicated},
		{"xfam unknown", with(tdxRVs, "xfam", `[]`), noDebug, vec{4, 2, 36}, ear.StatusWarning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := clone(t, base)
			if tt.mutate != nil {
				tt.mutate(in)
			}
			out, err := p.Evaluate(context.Background(), in, newRV(tt.rvs), false)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, out.TrustVector, tt.want, tt.status)
		})
	}
}

// snpFlat and snpNested are the two SNP claim layouts the policy accepts.
func snpFlat() map[string]any {
	return map[string]any{"snp": map[string]any{
		"measurement": "m1", "reported_tcb_bootloader": 3, "reported_tcb_microcode": 209,
		"reported_tcb_snp": 20, "reported_tcb_tee": 0,
		"policy_debug_allowed": false, "policy_migrate_ma": false, "policy_abi_major": 0, "policy_abi_minor": 31,
		"policy_single_socket": false, "policy_smt_allowed": true,
		"platform_smt_enabled": true, "platform_tsme_enabled": false,
	}}
}

func snpNested() map[string]any {
	return map[string]any{"snp": map[string]any{"evidence": map[string]any{
		"measurement":  "m1",
		"reported_tcb": map[string]any{"bootloader": 3, "microcode": 209, "snp": 20, "tee": 0, "fmc": nil},
		"policy": map[string]any{"debug_allowed": false, "migrate_ma_allowed": false, "abi_major": 0, "abi_minor": 31,
			"single_socket_required": false, "smt_allowed": true},
		"plat_info": map[string]any{"smt_enabled": true, "tsme_enabled": false},
	}}}
}

var snpRVs = map[string]string{
	"snp_launch_measurement": `["m1"]`, "snp_bootloader": `[3]`, "snp_microcode": `[209]`, "snp_snp_svn": `[20]`,
	"snp_tee_svn": `[0]`, "snp_smt_enabled": `true`, "snp_tsme_enabled": `false`, "snp_guest_abi_major": `0`,
	"snp_guest_abi_minor": `31`, "snp_single_socket": `false`, "snp_smt_allowed": `true`,
}

func TestDefaultCPUSNPLayouts(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	setDebug := func(m map[string]any) {
		s := obj(m, "snp")
		if e, ok := s["evidence"].(map[string]any); ok {
			obj(e, "policy")["debug_allowed"] = true
		} else {
			s["policy_debug_allowed"] = true
		}
	}
	dropMeasurement := func(m map[string]any) {
		s := obj(m, "snp")
		if e, ok := s["evidence"].(map[string]any); ok {
			delete(e, "measurement")
		} else {
			delete(s, "measurement")
		}
	}
	tests := []struct {
		name   string
		rvs    map[string]string
		mutate func(map[string]any)
		want   vec
	}{
		{"no reference values", nil, nil, vec{33, 97, 3}},
		{"all reference values", snpRVs, nil, vec{3, 2, 2}},
		{"abi minor differs", with(snpRVs, "snp_guest_abi_minor", `30`), nil, vec{3, 2, 3}},
		{"microcode unknown", with(snpRVs, "snp_microcode", `[1]`), nil, vec{3, 97, 2}},
		{"debug allowed", snpRVs, setDebug, vec{3, 2, 36}},
		{"measurement missing", snpRVs, dropMeasurement, vec{33, 2, 2}},
	}
	for _, layout := range []struct {
		name string
		in   func() map[string]any
	}{{"flat", snpFlat}, {"nested", snpNested}} {
		for _, tt := range tests {
			t.Run(layout.name+"/"+tt.name, func(t *testing.T) {
				in := clone(t, layout.in())
				if tt.mutate != nil {
					tt.mutate(in)
				}
				out, err := p.Evaluate(context.Background(), in, newRV(tt.rvs), false)
				if err != nil {
					t.Fatal(err)
				}
				checkVector(t, out.TrustVector, tt.want, out.TrustVector.Status())
			})
		}
	}
}

func TestDefaultCPUOtherTEEs(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	azsnp := map[string]any{"az-snp-vtpm": map[string]any{
		"measurement": "m", "tpm": map[string]any{"pcr11": "p11"},
		"reported_tcb_bootloader": 3, "reported_tcb_microcode": 115, "reported_tcb_snp": 8, "reported_tcb_tee": 0,
		"platform_smt_enabled": 1, "platform_tsme_enabled": 0, "policy_abi_major": 0, "policy_abi_minor": 31,
		"policy_single_socket": 0, "policy_smt_allowed": 1,
	}}
	azsnpRVs := map[string]string{"measurement": `["m"]`, "snp_pcr11": `["p11"]`, "tcb_bootloader": `[3]`,
		"tcb_microcode": `[115]`, "tcb_snp": `[8]`, "tcb_tee": `[0]`, "smt_enabled": `[1]`, "tsme_enabled": `[0]`,
		"abi_major": `[0]`, "abi_minor": `[31]`, "single_socket": `[0]`, "smt_allowed": `[1]`}
	aztdx := map[string]any{"az-tdx-vtpm": map[string]any{
		"tpm":        map[string]any{"pcr11": "p11"},
		"quote":      map[string]any{"header": map[string]any{"tee_type": "81000000", "vendor_id": "939a7233f79c4ca9940a0db3957f0607"}, "body": map[string]any{"mr_td": "td", "xfam": "x"}},
		"tcb_status": "UpToDate",
	}}
	aztdxRVs := map[string]string{"tdx_pcr11": `["p11"]`, "mr_td": `["td"]`, "xfam": `["x"]`}
	tpm := map[string]any{"tpm": map[string]any{"pcr11": "p11", "ak_public": "ak"}}
	tests := []struct {
		name   string
		in     map[string]any
		rvs    map[string]string
		want   vec
		status ear.Status
	}{
		{"az-snp-vtpm approved", azsnp, azsnpRVs, vec{3, 2, 2}, ear.StatusAffirming},
		{"az-snp-vtpm pcr11 unknown", azsnp, with(azsnpRVs, "snp_pcr11", `["x"]`), vec{33, 2, 2}, ear.StatusWarning},
		{"az-snp-vtpm no values", azsnp, nil, vec{33, 97, 36}, ear.StatusContraindicated},
		{"az-tdx-vtpm approved", aztdx, aztdxRVs, vec{3, 2, 2}, ear.StatusAffirming},
		{"az-tdx-vtpm no values", aztdx, nil, vec{33, 97, 36}, ear.StatusContraindicated},
		{"tpm approved", tpm, map[string]string{"tpm_pcr11": `["p11"]`, "trusted_aks": `["ak"]`}, vec{3, 2, 0}, ear.StatusAffirming},
		{"tpm untrusted ak", tpm, map[string]string{"tpm_pcr11": `["p11"]`}, vec{33, 2, 0}, ear.StatusWarning},
		{"se", map[string]any{"se": map[string]any{"version": "256"}}, nil, vec{3, 2, 2}, ear.StatusAffirming},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.Evaluate(context.Background(), clone(t, tt.in), newRV(tt.rvs), false)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, out.TrustVector, tt.want, tt.status)
		})
	}
}

func TestDefaultCPUIdentifiers(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	tdx := loadJSON(t, "tdx_input.json")
	noUIDs := clone(t, tdx)
	for _, c := range obj(noUIDs, "init_data_claims", "agent_policy_claims")["containers"].([]any) {
		delete(obj(c.(map[string]any), "OCI", "Process"), "User")
	}
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"agent policy", tdx, `{"container_images":["bitnami/nginx:latest"],"container_uids":[65535,1001]}`},
		{"no uids", noUIDs, `{"container_images":["bitnami/nginx:latest"]}`},
		{"no init data", loadJSON(t, "sample_input.json"), `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := p.Evaluate(context.Background(), tt.in, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Extensions) != 1 || out.Extensions[0].Name != "ear.trustee.identifiers" || out.Extensions[0].Key != -18 {
				t.Fatalf("extensions = %+v", out.Extensions)
			}
			got, _ := json.Marshal(out.Extensions[0].Value.(map[string]any)["validated"])
			if string(got) != tt.want {
				t.Errorf("validated = %s, want %s", got, tt.want)
			}
			if m := out.ExtensionMap(); m["ear.trustee.identifiers"] == nil {
				t.Errorf("ExtensionMap = %v", m)
			}
		})
	}
}

func nrasClaims() map[string]any {
	chain := map[string]any{"x-nvidia-cert-status": "valid", "x-nvidia-cert-ocsp-status": "good", "x-nvidia-cert-expiration-date": "2027-01-01"}
	g := map[string]any{
		"x-nvidia-gpu-attestation-report-cert-chain":            chain,
		"x-nvidia-gpu-attestation-report-cert-chain-fwid-match": true,
		"x-nvidia-gpu-attestation-report-parsed":                true,
		"x-nvidia-gpu-attestation-report-signature-verified":    true,
		"x-nvidia-gpu-arch-check":                               true,
		"x-nvidia-gpu-vbios-rim-cert-chain":                     chain,
		"x-nvidia-gpu-driver-rim-cert-chain":                    map[string]any{"x-nvidia-cert-status": "expired"},
		"secboot":                                               true,
		"dbgstat":                                               "disabled",
		"measres":                                               "success",
		"x-nvidia-gpu-vbios-version":                            "96.00.9F.00.01",
		"x-nvidia-gpu-driver-version":                           "550.90.07",
	}
	for _, kind := range []string{"driver", "vbios"} {
		for _, step := range []string{"fetched", "measurements-available", "schema-validated", "signature-verified", "version-match"} {
			g["x-nvidia-gpu-"+kind+"-rim-"+step] = true
		}
	}
	return map[string]any{"nvidia": g}
}

func TestDefaultGPU(t *testing.T) {
	p := defaultPolicy(t, "default_gpu")
	gpuRVs := map[string]string{"allowed_vbios_versions": `["96.00.9F.00.01"]`, "allowed_driver_versions": `["550.90.07"]`}
	set := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { obj(m, "nvidia")[k] = v }
	}
	sampleDevice := map[string]any{"sampledevice": map[string]any{"svn": "2"}}
	tests := []struct {
		name   string
		in     map[string]any
		rvs    map[string]string
		mutate func(map[string]any)
		want   vec
		status ear.Status
	}{
		{"sampledevice without device_svn", sampleDevice, nil, nil, vec{33, 97, 36}, ear.StatusContraindicated},
		{"sampledevice with device_svn", sampleDevice, map[string]string{"device_svn": `["2"]`}, nil, vec{33, 2, 36}, ear.StatusWarning},
		{"sampledevice other svn", sampleDevice, map[string]string{"device_svn": `["1"]`}, nil, vec{33, 97, 36}, ear.StatusContraindicated},
		{"nras approved", nrasClaims(), gpuRVs, nil, vec{3, 2, 2}, ear.StatusAffirming},
		{"nras versions not registered", nrasClaims(), nil, nil, vec{3, 2, 3}, ear.StatusAffirming},
		{"debug enabled", nrasClaims(), gpuRVs, set("dbgstat", "enabled"), vec{3, 2, 36}, ear.StatusWarning},
		{"ocsp revoked", nrasClaims(), gpuRVs, set("x-nvidia-gpu-attestation-report-cert-chain",
			map[string]any{"x-nvidia-cert-status": "valid", "x-nvidia-cert-ocsp-status": "revoked"}), vec{3, 97, 2}, ear.StatusContraindicated},
		{"arch check failed", nrasClaims(), gpuRVs, set("x-nvidia-gpu-arch-check", false), vec{3, 97, 2}, ear.StatusContraindicated},
		{"measurement mismatch", nrasClaims(), gpuRVs, set("measres", "fail"), vec{33, 2, 2}, ear.StatusWarning},
		{"driver rim not fetched", nrasClaims(), gpuRVs, set("x-nvidia-gpu-driver-rim-fetched", false), vec{33, 2, 2}, ear.StatusWarning},
		{"vbios rim unverified", nrasClaims(), gpuRVs, func(m map[string]any) { delete(obj(m, "nvidia"), "x-nvidia-gpu-vbios-rim-signature-verified") }, vec{33, 2, 2}, ear.StatusWarning},
		{"local mode claims", map[string]any{"nvidia": map[string]any{"measurements": []any{"ab"}, "config": map[string]any{}}}, gpuRVs, nil, vec{33, 97, 36}, ear.StatusContraindicated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := clone(t, tt.in)
			if tt.mutate != nil {
				tt.mutate(in)
			}
			out, err := p.Evaluate(context.Background(), in, newRV(tt.rvs), false)
			if err != nil {
				t.Fatal(err)
			}
			checkVector(t, out.TrustVector, tt.want, tt.status)
			if len(out.Extensions) != 0 {
				t.Errorf("extensions = %v", out.Extensions)
			}
		})
	}
}

func TestDefaultPoliciesCompile(t *testing.T) {
	pols := DefaultAppraisalPolicies()
	for _, id := range []string{"default_cpu", "default_gpu"} {
		if _, ok := pols[id]; !ok {
			t.Errorf("missing %s", id)
		}
	}
	for id, text := range pols {
		if _, err := CompileAppraisal(id, text); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	pols["default_cpu"] = "changed"
	if DefaultAppraisalPolicies()["default_cpu"] == "changed" {
		t.Error("DefaultAppraisalPolicies shares its map")
	}
	for name, text := range map[string]string{"default": ResourceDefault, "allow_all": ResourceAllowAll,
		"deny_all": ResourceDenyAll, "affirming": ResourceAffirming} {
		if _, err := CompileResource(text); err != nil {
			t.Errorf("resource %s: %v", name, err)
		}
	}
}

// Trustee-dialect policies, in the forms Regorus accepts.
var dialectPolicies = map[string]string{
	"v1 with import": `package policy
import rego.v1
default hardware := 97
hardware := 2 if { input.sample.svn in query_reference_value("svn") }
trust_claims := {"hardware": hardware}
`,
	"v1 keywords without import": `package policy
default hardware = 97
hardware := 2 if { input.sample.svn in query_reference_value("svn") }
trust_claims := {"hardware": hardware}
`,
	"v0 bodies without if": `package policy
default hardware = 97
hardware = 2 { svns := query_reference_value("svn"); svns[_] == input.sample.svn }
trust_claims = {"hardware": hardware}
`,
	"v0 bodies with in": `package policy
default hardware = 97
hardware = 2 { input.sample.svn in query_reference_value("svn") }
trust_claims[k] = v { some k, v in {"hardware": hardware} }
`,
	"future keywords import": `package policy
import future.keywords.in
import future.keywords.if
default hardware := 97
hardware := 2 if { input.sample.svn in query_reference_value("svn") }
trust_claims := {"hardware": hardware}
`,
}

func TestDialects(t *testing.T) {
	in := loadJSON(t, "sample_input.json")
	for name, text := range dialectPolicies {
		t.Run(name, func(t *testing.T) {
			p := mustAppraisal(t, "dialect", text)
			for _, tt := range []struct {
				rvs  map[string]string
				want int8
			}{{nil, 97}, {map[string]string{"svn": `["1"]`}, 2}} {
				out, err := p.Evaluate(context.Background(), in, newRV(tt.rvs), false)
				if err != nil {
					t.Fatal(err)
				}
				if hw, _ := out.TrustVector.Get("hardware"); hw != tt.want {
					t.Errorf("hardware = %d, want %d", hw, tt.want)
				}
				if _, set := out.TrustVector.Get("executables"); set {
					t.Error("unset claim appears in the vector")
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for name, text := range map[string]string{
		"syntax":        "package policy\nallow if {",
		"wrong package": "package other\nimport rego.v1\ntrust_claims := {}",
		"unknown call":  "package policy\nimport rego.v1\ntrust_claims := {\"hardware\": no_such_function(1)}",
		"empty":         "",
		"rv arity":      "package policy\nimport rego.v1\nx := query_reference_value(\"a\", \"b\")",
	} {
		if _, err := CompileAppraisal("bad", text); err == nil {
			t.Errorf("%s: compiled", name)
		}
		if _, err := CompileResource(text); err == nil {
			t.Errorf("%s: compiled as resource policy", name)
		}
	}
}

func TestTrustClaimsValidation(t *testing.T) {
	tests := []struct {
		name    string
		rules   string
		wantErr string
		want    map[string]int8
	}{
		{"unknown claim", `trust_claims := {"hardware": 2, "filesystem": 0}`, `"filesystem"`, nil},
		{"snake case claim", `trust_claims := {"file_system": 0}`, `"file_system"`, nil},
		{"unknown claim known at run time", `trust_claims[k] := 2 if some k in ["vibes"]`, `"vibes"`, nil},
		{"not an integer", `trust_claims := {"hardware": 2.5}`, "hardware", nil},
		{"string value", `trust_claims := {"hardware": "2"}`, "hardware", nil},
		{"above int8", `trust_claims := {"hardware": 128}`, "out of range", nil},
		{"below int8", `trust_claims := {"hardware": -129}`, "out of range", nil},
		{"empty object", `trust_claims := {}`, "no trust claim", nil},
		{"not an object", `trust_claims := [1]`, "object", nil},
		{"conflict", "trust_claims := {\"hardware\": 2} if input.a\ntrust_claims := {\"hardware\": 3} if input.b", "evaluate", nil},
		{"missing rule", `hardware := 2`, "", map[string]int8{"instance-identity": 0, "configuration": 0, "executables": 0,
			"file-system": 0, "hardware": 0, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}},
		{"subset", `trust_claims := {"hardware": 2, "sourced-data": -128}`, "", map[string]int8{"hardware": 2, "sourced-data": -128}},
		{"undefined when input lacks it", `trust_claims := {"hardware": 2} if input.nothing`, "", map[string]int8{"instance-identity": 0,
			"configuration": 0, "executables": 0, "file-system": 0, "hardware": 0, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Claim names written literally are checked at compile time,
			// the rest when the policy is evaluated.
			p, err := CompileAppraisal("p", "package policy\nimport rego.v1\n"+tt.rules+"\n")
			var out *Outcome
			if err == nil {
				out, err = p.Evaluate(context.Background(), map[string]any{"a": true, "b": true}, nil, false)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int8{}
			for _, n := range ear.ClaimNames() {
				if v, ok := out.TrustVector.Get(n); ok {
					got[n] = v
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("vector = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExtensionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		wantErr bool
		want    []Extension
	}{
		{"null value dropped", `extensions := [{"name": "a", "key": 1, "value": null}, {"name": "b", "key": -2, "value": {"n": 3}}]`, false,
			[]Extension{{Name: "b", Key: -2, Value: map[string]any{"n": int64(3)}}}},
		{"missing value dropped", `extensions := [{"name": "a", "key": 1}]`, false, nil},
		{"not an array", `extensions := {"name": "a"}`, true, nil},
		{"key not integer", `extensions := [{"name": "a", "key": "k", "value": 1}]`, true, nil},
		{"key out of i32", `extensions := [{"name": "a", "key": 4294967296, "value": 1}]`, true, nil},
		{"no name", `extensions := [{"key": 1, "value": 1}]`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustAppraisal(t, "p", "package policy\nimport rego.v1\ntrust_claims := {\"hardware\": 2}\n"+tt.rule+"\n")
			out, err := p.Evaluate(context.Background(), nil, nil, false)
			if tt.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Extensions, tt.want) {
				t.Errorf("extensions = %#v, want %#v", out.Extensions, tt.want)
			}
		})
	}
}

type rvFunc func(ctx context.Context, id string) (json.RawMessage, error)

func (f rvFunc) Query(ctx context.Context, id string) (json.RawMessage, error) { return f(ctx, id) }

func TestReferenceValueLookup(t *testing.T) {
	text := `package policy
import rego.v1
default hardware := 97
hardware := 2 if {
	input.svn in query_reference_value("svn")
	count(query_reference_value("svn")) == 1
	query_reference_value("absent") == null
}
trust_claims := {"hardware": hardware}
`
	p := mustAppraisal(t, "rv", text)
	in := map[string]any{"svn": "1"}

	rv := newRV(map[string]string{"svn": `["1"]`})
	out, err := p.Evaluate(context.Background(), in, rv, false)
	if err != nil {
		t.Fatal(err)
	}
	if hw, _ := out.TrustVector.Get("hardware"); hw != 2 {
		t.Errorf("hardware = %d", hw)
	}
	if rv.queries["svn"] != 1 {
		t.Errorf("svn looked up %d times in one evaluation, want 1 (memoized)", rv.queries["svn"])
	}
	if _, err := p.Evaluate(context.Background(), in, rv, false); err != nil {
		t.Fatal(err)
	}
	if rv.queries["svn"] != 2 {
		t.Errorf("memo leaked across evaluations: %d lookups", rv.queries["svn"])
	}

	// Nil ReferenceValues: everything is null.
	out, err = p.Evaluate(context.Background(), in, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if hw, _ := out.TrustVector.Get("hardware"); hw != 97 {
		t.Errorf("hardware = %d without reference values", hw)
	}

	boom := errors.New("rvps down")
	if _, err := p.Evaluate(context.Background(), in, rvFunc(func(context.Context, string) (json.RawMessage, error) {
		return nil, boom
	}), false); err == nil || !strings.Contains(err.Error(), "rvps down") {
		t.Errorf("lookup error not reported: %v", err)
	}
	if _, err := p.Evaluate(context.Background(), in, rvFunc(func(context.Context, string) (json.RawMessage, error) {
		return json.RawMessage(`{not json`), nil
	}), false); err == nil {
		t.Error("malformed reference value accepted")
	}

	// A lookup that outlives its deadline is an error.
	p.rvTimeout = 20 * time.Millisecond
	start := time.Now()
	_, err = p.Evaluate(context.Background(), in, rvFunc(func(ctx context.Context, _ string) (json.RawMessage, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}), false)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("timeout not reported: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("timeout not applied")
	}
	// One that ignores its context but returns late is an error too.
	_, err = p.Evaluate(context.Background(), in, rvFunc(func(ctx context.Context, _ string) (json.RawMessage, error) {
		time.Sleep(40 * time.Millisecond)
		return json.RawMessage(`["1"]`), nil
	}), false)
	if err == nil {
		t.Error("late lookup accepted")
	}
}

func TestExplanation(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	out, err := p.Evaluate(context.Background(), loadJSON(t, "sample_input.json"), newRV(with(sampleRVs, "svn", "")), true)
	if err != nil {
		t.Fatal(err)
	}
	e := out.Explanation
	if len(e) != 8 {
		t.Fatalf("explanation has %d claims: %v", len(e), e)
	}
	exe := e["executables"]
	if exe.Value != 3 || exe.Rule != "executables := 3" || !strings.HasPrefix(exe.Location, "default_cpu.rego:") || exe.Location == "default_cpu.rego:0" {
		t.Errorf("executables = %+v", exe)
	}
	hw := e["hardware"]
	if hw.Value != 97 || hw.Rule != "default" || !strings.HasPrefix(hw.Location, "default_cpu.rego:") {
		t.Errorf("hardware = %+v", hw)
	}
	// The default's location is the "default hardware" line.
	if line := lineOf(t, DefaultAppraisalPolicies()["default_cpu"], hw.Location); !strings.HasPrefix(line, "default hardware") {
		t.Errorf("hardware default points at %q", line)
	}
	if line := lineOf(t, DefaultAppraisalPolicies()["default_cpu"], exe.Location); !strings.HasPrefix(line, "executables := 3 if") {
		t.Errorf("executables points at %q", line)
	}

	// The else branch of the SNP configuration rule.
	out, err = p.Evaluate(context.Background(), snpFlat(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if c := out.Explanation["configuration"]; c.Value != 3 || !strings.Contains(c.Rule, "else") || !strings.Contains(c.Rule, "configuration") {
		t.Errorf("configuration = %+v", c)
	}

	// A policy whose trust_claims is not an object of rule references.
	q := mustAppraisal(t, "odd", "package policy\nimport rego.v1\ntrust_claims[k] := 2 if some k in [\"hardware\"]\n")
	out, err = q.Evaluate(context.Background(), nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if h := out.Explanation["hardware"]; h.Rule != "trust_claims" || h.Value != 2 {
		t.Errorf("hardware = %+v", h)
	}
}

func lineOf(t *testing.T, text, loc string) string {
	t.Helper()
	_, row, _ := strings.Cut(loc, ":")
	var n int
	for _, c := range row {
		n = n*10 + int(c-'0')
	}
	lines := strings.Split(text, "\n")
	if n < 1 || n > len(lines) {
		t.Fatalf("location %s out of range", loc)
	}
	return strings.TrimSpace(lines[n-1])
}

func TestConcurrentEvaluate(t *testing.T) {
	p := defaultPolicy(t, "default_cpu")
	in := loadJSON(t, "sample_input.json")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rvs := sampleRVs
			want := ear.StatusAffirming
			if i%2 == 1 {
				rvs, want = nil, ear.StatusContraindicated
			}
			for range 20 {
				out, err := p.Evaluate(context.Background(), in, newRV(rvs), i%4 == 0)
				if err != nil {
					errs <- err
					return
				}
				if s := out.TrustVector.Status(); s != want {
					errs <- errors.New("wrong status " + string(s))
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

func BenchmarkAppraisalSample(b *testing.B) {
	p := defaultPolicy(b, "default_cpu")
	in := loadJSON(b, "sample_input.json")
	rv := newRV(sampleRVs)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Evaluate(context.Background(), in, rv, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppraisalTDX(b *testing.B) {
	p := defaultPolicy(b, "default_cpu")
	in := loadJSON(b, "tdx_input.json")
	rv := newRV(tdxRVs)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Evaluate(context.Background(), in, rv, false); err != nil {
			b.Fatal(err)
		}
	}
}
