package policy

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

//go:embed defaults/appraisal/*.rego defaults/resource/*.rego
var defaultFiles embed.FS

// Embedded KBS resource policies.
var (
	// ResourceDefault allows the "resource" plugin only when cpu0 is a
	// hardware TEE and every submodule is affirming. The KBS stores it when
	// no resource policy exists (a stored policy is never replaced).
	ResourceDefault = mustRead("defaults/resource/default.rego")
	// ResourceTrusteeDefault is Trustee's default: allow the "resource"
	// plugin unless cpu0 is the sample TEE, whatever ear.status says.
	ResourceTrusteeDefault = mustRead("defaults/resource/trustee_default.rego")
	// ResourceAllowAll allows every "resource" plugin request.
	ResourceAllowAll = mustRead("defaults/resource/allow_all.rego")
	// ResourceDenyAll denies everything.
	ResourceDenyAll = mustRead("defaults/resource/deny_all.rego")
	// ResourceAffirming allows only when every submod is affirming.
	ResourceAffirming = mustRead("defaults/resource/affirming.rego")
)

// DefaultAppraisalPolicies returns the embedded attestation-service policies
// keyed by policy id ("default_cpu", "default_gpu", ...). The map is fresh on
// every call.
func DefaultAppraisalPolicies() map[string]string {
	out := make(map[string]string)
	entries, err := fs.ReadDir(defaultFiles, "defaults/appraisal")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".rego" {
			continue
		}
		out[strings.TrimSuffix(name, ".rego")] = mustRead("defaults/appraisal/" + name)
	}
	return out
}

func mustRead(name string) string {
	b, err := defaultFiles.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time; a missing file is a build bug
	}
	return string(b)
}
