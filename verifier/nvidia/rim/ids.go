package rim

import (
	"fmt"
	"strings"
)

// LS10 switch RIM id constants (project, project SKU, chip SKU).
const (
	switchProject    = "5612"
	switchProjectSKU = "0002"
	switchChipSKU    = "890"
)

// clean strips NUL padding and surrounding spaces, as the opaque-data
// strings of the SPDM report carry trailing NULs.
func clean(s string) string {
	return strings.TrimSpace(strings.Trim(s, "\x00"))
}

func checkPart(name, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidID, name)
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("%w: %s %q contains %q", ErrInvalidID, name, s, r)
		}
	}
	return nil
}

// HopperDriverID returns the driver RIM id for a Hopper GPU:
// NV_GPU_DRIVER_GH100_<driver version>, e.g. NV_GPU_DRIVER_GH100_550.90.07.
func HopperDriverID(driverVersion string) (string, error) {
	v := clean(driverVersion)
	if err := checkPart("driver version", v); err != nil {
		return "", err
	}
	return "NV_GPU_DRIVER_GH100_" + v, nil
}

// BlackwellDriverID returns the driver RIM id for a Blackwell GPU:
// NV_GPU_CC_DRIVER_<CHIP_INFO>_<driver version>; an empty chip info falls back
// to GB100 (NVAT's rule).
func BlackwellDriverID(chipInfo, driverVersion string) (string, error) {
	chip := strings.ToUpper(clean(chipInfo))
	if chip == "" {
		chip = "GB100"
	}
	if err := checkPart("chip info", chip); err != nil {
		return "", err
	}
	v := clean(driverVersion)
	if err := checkPart("driver version", v); err != nil {
		return "", err
	}
	return "NV_GPU_CC_DRIVER_" + chip + "_" + v, nil
}

// VBIOSID returns the VBIOS RIM id:
// NV_GPU_VBIOS_<PROJECT>_<PROJECT_SKU>_<CHIP_SKU>_<VERSION without dots>, all
// upper case, e.g. NV_GPU_VBIOS_1010_0200_882_96009F0001 for 96.00.9f.00.01.
func VBIOSID(project, projectSKU, chipSKU, vbiosVersion string) (string, error) {
	parts := []struct{ name, val string }{
		{"project", project}, {"project SKU", projectSKU}, {"chip SKU", chipSKU}, {"VBIOS version", vbiosVersion},
	}
	out := make([]string, 0, 4)
	for _, p := range parts {
		v := strings.ToUpper(clean(p.val))
		if err := checkPart(p.name, v); err != nil {
			return "", err
		}
		out = append(out, v)
	}
	out[3] = strings.ReplaceAll(out[3], ".", "")
	return "NV_GPU_VBIOS_" + strings.Join(out, "_"), nil
}

// SwitchBIOSID returns the LS10 switch BIOS RIM id:
// NV_SWITCH_BIOS_5612_0002_890_<BIOS version without dots, upper case>.
func SwitchBIOSID(biosVersion string) (string, error) {
	v := strings.ToUpper(clean(biosVersion))
	if err := checkPart("BIOS version", v); err != nil {
		return "", err
	}
	return "NV_SWITCH_BIOS_" + switchProject + "_" + switchProjectSKU + "_" + switchChipSKU + "_" + strings.ReplaceAll(v, ".", ""), nil
}

// validID reports whether id is safe to use in a URL path and as a file name.
func validID(id string) error {
	if id == "" || len(id) > 200 || strings.Contains(id, "..") {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%w: %q contains %q", ErrInvalidID, id, r)
		}
	}
	return nil
}
