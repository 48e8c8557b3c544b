# Sigil default KBS resource policy.
#
# input is the verified attestation token (an EAR claim set); data describes
# the request: {"plugin": "...", "resource-path": [...], "query": {...}}.
#
# Resources are released to any genuine TEE the attestation service accepted,
# but never to the test-only "sample" TEE.
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
	not input.submods.cpu0["ear.veraison.annotated-evidence"].sample
}
