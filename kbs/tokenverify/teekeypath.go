package tokenverify

import (
	"fmt"
	"regexp"
)

// cpuSubmod names the submodules of an EAR token that appraise a CPU TEE.
var cpuSubmod = regexp.MustCompile(`^cpu[0-9]+$`)

// ValidateTeeKeyPath checks a configured extra TEE-key pointer: it must be
// a valid RFC 6901 pointer and, when it points into the submodules of an
// EAR token, into a CPU submodule. The key a secret is encrypted to must
// come from the TEE that was attested; a device (gpu0, switch0, ...)
// reports only what its own evidence carried, and a guest with no TEE at
// all can send device evidence.
func ValidateTeeKeyPath(ptr string) error {
	parts, err := splitPointer(ptr)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("JSON pointer %q addresses the whole token, not a key", ptr)
	}
	if parts[0] == "submods" {
		if len(parts) < 3 || !cpuSubmod.MatchString(parts[1]) {
			return fmt.Errorf("JSON pointer %q: the TEE key can only come from a CPU submodule (/submods/cpu<N>/...)", ptr)
		}
	}
	return nil
}
