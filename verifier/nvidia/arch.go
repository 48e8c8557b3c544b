package nvidia

import (
	"fmt"
	"strings"
)

// Arch is a device architecture as named in the evidence ("arch").
type Arch string

// Supported architectures.
const (
	ArchHopper    Arch = "HOPPER"
	ArchBlackwell Arch = "BLACKWELL"
	ArchLS10      Arch = "LS10"
)

// Result classes.
const (
	ClassGPU    = "gpu"
	ClassSwitch = "switch"
)

// ParseArch maps an evidence arch string (case-insensitive) to an Arch.
func ParseArch(s string) (Arch, error) {
	switch a := Arch(strings.ToUpper(strings.TrimSpace(s))); a {
	case ArchHopper, ArchBlackwell, ArchLS10:
		return a, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedArch, s)
}

// IsSwitch reports whether the architecture is an NVSwitch.
func (a Arch) IsSwitch() bool { return a == ArchLS10 }

// Class is the verifier.Result class: "switch" for LS10, else "gpu".
func (a Arch) Class() string {
	if a.IsSwitch() {
		return ClassSwitch
	}
	return ClassGPU
}

// claimName is the "arch" claim value (Trustee's spelling for Hopper).
func (a Arch) claimName() string {
	switch a {
	case ArchHopper:
		return "Hopper"
	case ArchBlackwell:
		return "Blackwell"
	}
	return string(a)
}

// claimPrefix is the NRAS claim prefix.
func (a Arch) claimPrefix() string {
	if a.IsSwitch() {
		return "x-nvidia-switch-"
	}
	return "x-nvidia-gpu-"
}
