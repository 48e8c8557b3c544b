# Releases resources only when the attestation token holds at least one
# submodule and every submodule's EAR status is "affirming".
package policy

import rego.v1

default allow := false

allow if {
	count(input.submods) > 0
	every _, submod in input.submods {
		submod["ear.status"] == "affirming"
	}
}
