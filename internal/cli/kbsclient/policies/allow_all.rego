# Releases every resource of the "resource" plugin to any attested client.
package policy

import rego.v1

default allow := false

allow if {
	data.plugin == "resource"
}
