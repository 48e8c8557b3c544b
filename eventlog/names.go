package eventlog

import "fmt"

// TCG PC Client event types (TCG PC Client Platform Firmware Profile,
// section 10.4.1) used by the details decoders.
const (
	EvPrebootCert                = 0x00000000
	EvPostCode                   = 0x00000001
	EvNoAction                   = 0x00000003
	EvSeparator                  = 0x00000004
	EvAction                     = 0x00000005
	EvEventTag                   = 0x00000006
	EvPlatformConfigFlags        = 0x0000000A
	EvCompactHash                = 0x0000000C
	EvIPL                        = 0x0000000D
	EvOmitBootDeviceEvents       = 0x00000012
	EvEFIVariableDriverConfig    = 0x80000001
	EvEFIVariableBoot            = 0x80000002
	EvEFIBootServicesApplication = 0x80000003
	EvEFIAction                  = 0x80000007
	EvEFIPlatformFirmwareBlob2   = 0x8000000A
	EvEFIHandoffTables2          = 0x8000000B
	EvEFIVariableBoot2           = 0x8000000C
	EvEFIVariableAuthority       = 0x800000E0
)

var eventTypeNames = map[uint32]string{
	0x00000000: "EV_PREBOOT_CERT",
	0x00000001: "EV_POST_CODE",
	0x00000002: "EV_UNUSED",
	0x00000003: "EV_NO_ACTION",
	0x00000004: "EV_SEPARATOR",
	0x00000005: "EV_ACTION",
	0x00000006: "EV_EVENT_TAG",
	0x00000007: "EV_S_CRTM_CONTENTS",
	0x00000008: "EV_S_CRTM_VERSION",
	0x00000009: "EV_CPU_MICROCODE",
	0x0000000A: "EV_PLATFORM_CONFIG_FLAGS",
	0x0000000B: "EV_TABLE_OF_DEVICES",
	0x0000000C: "EV_COMPACT_HASH",
	0x0000000D: "EV_IPL",
	0x0000000E: "EV_IPL_PARTITION_DATA",
	0x0000000F: "EV_NONHOST_CODE",
	0x00000010: "EV_NONHOST_CONFIG",
	0x00000011: "EV_NONHOST_INFO",
	0x00000012: "EV_OMIT_BOOT_DEVICE_EVENTS",
	0x80000000: "EV_EFI_EVENT_BASE",
	0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG",
	0x80000002: "EV_EFI_VARIABLE_BOOT",
	0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION",
	0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
	0x80000005: "EV_EFI_RUNTIME_SERVICES_DRIVER",
	0x80000006: "EV_EFI_GPT_EVENT",
	0x80000007: "EV_EFI_ACTION",
	0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
	0x80000009: "EV_EFI_HANDOFF_TABLES",
	0x8000000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
	0x8000000B: "EV_EFI_HANDOFF_TABLES2",
	0x8000000C: "EV_EFI_VARIABLE_BOOT2",
	0x80000010: "EV_EFI_HCRTM_EVENT",
	0x800000E0: "EV_EFI_VARIABLE_AUTHORITY",
	0x800000E1: "EV_EFI_SPDM_FIRMWARE_BLOB",
	0x800000E2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
	0x800000E3: "EV_EFI_SPDM_DEVICE_POLICY",
	0x800000E4: "EV_EFI_SPDM_DEVICE_AUTHORITY",
}

// EventTypeName returns the TCG name of an event type, or
// "EV_UNKNOWN_0x%08x" for a type the TCG PC Client profile does not define.
// (Trustee rejects logs with such types; this package keeps them, with empty
// details.)
func EventTypeName(t uint32) string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EV_UNKNOWN_0x%08x", t)
}
