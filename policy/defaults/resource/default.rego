# Sigil default KBS resource policy: fail closed.
#
# input is the verified attestation token (an EAR claim set); data describes
# the request: {"plugin": "...", "resource-path": [...], "query": {...}}.
#
# A resource of the "resource" plugin is released only when
#   - the token has a cpu0 submodule (the CPU TEE's appraisal),
#   - cpu0 comes from a hardware TEE, not the test-only "sample" TEE, and
#   - every submodule of the token (cpu0, gpu0, ...) is "affirming".
# A real TEE is affirming only when its appraisal policy finds its
# measurements among the registered reference values. Trustee's default,
# which ignores ear.status, is trustee_default.rego.
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
	cpu0 := input.submods.cpu0
	not cpu0["ear.veraison.annotated-evidence"].sample
	not cpu0["ear.veraison.annotated-evidence"].sampledevice
	every _, appraisal in input.submods {
		appraisal["ear.status"] == "affirming"
	}
}
