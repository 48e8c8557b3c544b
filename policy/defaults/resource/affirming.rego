# Release resources only when the token holds at least one appraisal and
# every appraisal (cpu0, gpu0, ...) is affirming.
package policy

import rego.v1

default allow := false

allow if {
	count(input.submods) > 0
	every _, appraisal in input.submods {
		appraisal["ear.status"] == "affirming"
	}
}
