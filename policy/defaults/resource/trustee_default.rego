# Trustee's default KBS resource policy, kept by name.
#
# It releases resources of the "resource" plugin to any token whose cpu0 is
# not the test-only "sample" TEE, whatever the appraisal says: a debug TD, a
# contraindicated CPU, or a genuine CPU next to a non-genuine GPU all pass.
# Sigil's default (default.rego) is stricter; see docs/compatibility.md.
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
	not input.submods.cpu0["ear.veraison.annotated-evidence"].sample
}
