package nvidia

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NVIDIA opaque-data TLV types (OPAQUE_FIELD_ID_* in NVIDIA's tools).
const (
	OpaqueCertIssuerName      uint16 = 1
	OpaqueCertAuthorityKeyID  uint16 = 2
	OpaqueDriverVersion       uint16 = 3
	OpaqueGPUInfo             uint16 = 4
	OpaqueSKU                 uint16 = 5
	OpaqueVBIOSVersion        uint16 = 6
	OpaqueManufacturerID      uint16 = 7
	OpaqueTamperDetection     uint16 = 8
	OpaqueSMC                 uint16 = 9
	OpaqueVPR                 uint16 = 10
	OpaqueNVDEC0Status        uint16 = 11
	OpaqueMsrsCnt             uint16 = 12
	OpaqueCPRInfo             uint16 = 13
	OpaqueBoardID             uint16 = 14
	OpaqueChipSKU             uint16 = 15
	OpaqueChipSKUMod          uint16 = 16
	OpaqueProject             uint16 = 17
	OpaqueProjectSKU          uint16 = 18
	OpaqueProjectSKUMod       uint16 = 19
	OpaqueFWID                uint16 = 20
	OpaqueProtectedPCIeStatus uint16 = 21
	OpaqueSwitchPDI           uint16 = 22
	OpaqueFloorsweptPorts     uint16 = 23
	OpaquePositionID          uint16 = 24
	OpaqueLockSwitchStatus    uint16 = 25
	OpaqueSwitchGPUPDIs       uint16 = 26
	OpaqueSwitchPorts         uint16 = 27
	OpaqueGPULinkConn         uint16 = 32
	OpaqueSysEnableStatus     uint16 = 33
	OpaqueOpaqueDataVersion   uint16 = 34
	OpaqueChipInfo            uint16 = 35
	OpaqueFeatureFlag         uint16 = 36
	OpaqueInvalid             uint16 = 255
	nvdecDisabled                    = 0x55
	nvdecEnabled                     = 0xAA
	fwidSize                         = 48
	switchPDISize                    = 8
	msrCountSize                     = 4
	maxLEIntSize                     = 8
)

// configKeys are Trustee's claim names (under "config") for the TLV types
// it knows. Types 26 and 27 (switch only) are not among them.
var configKeys = map[uint16]string{
	OpaqueCertIssuerName:      "cert_issuer_name",
	OpaqueCertAuthorityKeyID:  "cert_authority_key_identifier",
	OpaqueDriverVersion:       "driver_version",
	OpaqueGPUInfo:             "gpu_info",
	OpaqueSKU:                 "id_sku",
	OpaqueVBIOSVersion:        "vbios_version",
	OpaqueManufacturerID:      "manufacturer_id",
	OpaqueTamperDetection:     "tamper_detection",
	OpaqueSMC:                 "smc",
	OpaqueVPR:                 "vpr",
	OpaqueNVDEC0Status:        "nvdec0_status",
	OpaqueMsrsCnt:             "measurement_count",
	OpaqueCPRInfo:             "cpr_info",
	OpaqueBoardID:             "board_id",
	OpaqueChipSKU:             "chip_sku",
	OpaqueChipSKUMod:          "chip_sku_mod",
	OpaqueProject:             "project",
	OpaqueProjectSKU:          "project_sku",
	OpaqueProjectSKUMod:       "project_sku_mod",
	OpaqueFWID:                "fwid",
	OpaqueProtectedPCIeStatus: "protected_pcie_status",
	OpaqueSwitchPDI:           "switch_pdi",
	OpaqueFloorsweptPorts:     "floorswept_ports",
	OpaquePositionID:          "position_id",
	OpaqueLockSwitchStatus:    "lock_switch_status",
	OpaqueGPULinkConn:         "gpu_link_conn",
	OpaqueSysEnableStatus:     "sys_enable_status",
	OpaqueOpaqueDataVersion:   "opaque_data_version",
	OpaqueChipInfo:            "chip_info",
	OpaqueFeatureFlag:         "feature_flag",
}

// lossyUTF8 decodes b like Rust's String::from_utf8_lossy: every invalid
// byte becomes U+FFFD.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			sb.WriteRune(utf8.RuneError)
			b = b[1:]
			continue
		}
		sb.WriteRune(r)
		b = b[n:]
	}
	return sb.String()
}

// cString decodes an opaque string field: lossy UTF-8, trailing NULs removed.
func cString(b []byte) string { return strings.TrimRight(lossyUTF8(b), "\x00") }

// formatGPUVBIOS renders the 8-byte GPU VBIOS field as NVIDIA does: the
// first half byte-reversed and dot-joined, then the first byte of the second
// half; lower case ("96.00.9f.00.01").
func formatGPUVBIOS(b []byte) (string, error) {
	if len(b) < 2 {
		return "", fmt.Errorf("%w: VBIOS version field of %d bytes", ErrMalformedReport, len(b))
	}
	half := len(b) / 2
	parts := make([]string, 0, half+1)
	for i := half - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%02x", b[i]))
	}
	parts = append(parts, fmt.Sprintf("%02x", b[half]))
	return strings.Join(parts, "."), nil
}

func leUint(b []byte) (uint64, error) {
	if len(b) > maxLEIntSize {
		return 0, fmt.Errorf("%w: opaque integer of %d bytes", ErrMalformedReport, len(b))
	}
	var p [maxLEIntSize]byte
	copy(p[:], b)
	return binary.LittleEndian.Uint64(p[:]), nil
}

// featureFlagName maps FEATURE_FLAG values to NVIDIA's names.
func featureFlagName(v uint64) string {
	switch v {
	case 0:
		return "SPT"
	case 1:
		return "MPT"
	case 2:
		return "PPCIE"
	default:
		return "unknown"
	}
}

func pdiList(b []byte) ([]any, error) {
	if len(b)%switchPDISize != 0 {
		return nil, fmt.Errorf("%w: PDI list of %d bytes is not a multiple of %d", ErrMalformedReport, len(b), switchPDISize)
	}
	out := make([]any, 0, len(b)/switchPDISize)
	for i := 0; i < len(b); i += switchPDISize {
		out = append(out, hex.EncodeToString(b[i:i+switchPDISize]))
	}
	return out, nil
}

// configClaims decodes the opaque fields into Trustee's "config" claims.
// Switch reports carry the BIOS version as ASCII; GPU reports as 8 bytes.
// Types Trustee does not know are left out.
func configClaims(fields []OpaqueField, isSwitch bool) (map[string]any, error) {
	cfg := make(map[string]any, len(fields))
	for _, f := range fields {
		key, ok := configKeys[f.Type]
		if !ok {
			continue
		}
		var v any
		switch f.Type {
		case OpaqueDriverVersion, OpaqueChipSKU, OpaqueChipSKUMod, OpaqueProject, OpaqueProjectSKU, OpaqueChipInfo:
			v = cString(f.Data)
		case OpaqueNVDEC0Status, OpaqueProtectedPCIeStatus:
			v = lossyUTF8(f.Data)
		case OpaqueVBIOSVersion:
			if isSwitch {
				v = cString(f.Data)
				break
			}
			s, err := formatGPUVBIOS(f.Data)
			if err != nil {
				return nil, err
			}
			v = s
		case OpaqueMsrsCnt:
			if len(f.Data)%msrCountSize != 0 {
				return nil, fmt.Errorf("%w: measurement count of %d bytes", ErrMalformedReport, len(f.Data))
			}
			m := make(map[string]any, len(f.Data)/msrCountSize)
			for i := 0; i < len(f.Data); i += msrCountSize {
				m[strconv.Itoa(i/msrCountSize+1)] = float64(binary.LittleEndian.Uint32(f.Data[i:]))
			}
			v = m
		case OpaqueSwitchPDI:
			l, err := pdiList(f.Data)
			if err != nil {
				return nil, err
			}
			v = l
		case OpaqueOpaqueDataVersion:
			n, err := leUint(f.Data)
			if err != nil {
				return nil, err
			}
			v = float64(n)
		case OpaqueFeatureFlag:
			n, err := leUint(f.Data)
			if err != nil {
				return nil, err
			}
			v = featureFlagName(n)
		default:
			v = hex.EncodeToString(f.Data)
		}
		cfg[key] = v
	}
	return cfg, nil
}
