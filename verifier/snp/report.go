package snp

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// ABI layout of the SEV-SNP ATTESTATION_REPORT structure (SEV-SNP firmware
// ABI specification, "ATTESTATION_REPORT Structure").
const (
	// ReportSize is the size of an attestation report in bytes.
	ReportSize = 0x4A0
	// SignedSize is the number of leading report bytes the signature covers
	// (0x000–0x29F).
	SignedSize = 0x2A0

	offVersion          = 0x000
	offGuestSVN         = 0x004
	offPolicy           = 0x008
	offFamilyID         = 0x010
	offImageID          = 0x020
	offVMPL             = 0x030
	offSigAlgo          = 0x034
	offCurrentTCB       = 0x038
	offPlatformInfo     = 0x040
	offKeyInfo          = 0x048
	offReportData       = 0x050
	offMeasurement      = 0x090
	offHostData         = 0x0C0
	offIDKeyDigest      = 0x0E0
	offAuthorKeyDigest  = 0x110
	offReportID         = 0x140
	offReportIDMA       = 0x160
	offReportedTCB      = 0x180
	offCPUIDFamID       = 0x188
	offCPUIDModID       = 0x189
	offCPUIDStep        = 0x18A
	offChipID           = 0x1A0
	offCommittedTCB     = 0x1E0
	offCurrentBuild     = 0x1E8
	offCurrentMinor     = 0x1E9
	offCurrentMajor     = 0x1EA
	offCommittedBuild   = 0x1EC
	offCommittedMinor   = 0x1ED
	offCommittedMajor   = 0x1EE
	offLaunchTCB        = 0x1F0
	offLaunchMitVector  = 0x1F8
	offCurrentMitVector = 0x200
	offSignatureR       = 0x2A0
	offSignatureS       = 0x2E8
	sigComponentSize    = 72
)

// Report versions this package can parse.
const (
	minParsableVersion = 2
	maxParsableVersion = 5
)

// SignatureAlgoECDSAP384SHA384 is the only SIGNATURE_ALGO the firmware uses.
const SignatureAlgoECDSAP384SHA384 = 1

// SigningKey is the SIGNING_KEY field of a report: which key signed it.
type SigningKey uint8

// Signing keys.
const (
	SigningKeyVCEK SigningKey = 0
	SigningKeyVLEK SigningKey = 1
	SigningKeyNone SigningKey = 7
)

// String returns "VCEK", "VLEK", "none" or "reserved(n)".
func (k SigningKey) String() string {
	switch k {
	case SigningKeyVCEK:
		return "VCEK"
	case SigningKeyVLEK:
		return "VLEK"
	case SigningKeyNone:
		return "none"
	}
	return "reserved(" + strconv.Itoa(int(k)) + ")"
}

// TCBVersion is one decoded TCB_VERSION field. Its byte layout depends on
// the processor generation: Milan and Genoa use
// [bootloader, tee, 0, 0, 0, 0, snp, microcode]; Turin uses
// [fmc, bootloader, tee, snp, 0, 0, 0, microcode].
type TCBVersion struct {
	// HasFMC is true for the Turin layout (which carries an FMC SPL).
	HasFMC bool
	// FMC is the FMC SPL (Turin and later only).
	FMC uint8
	// Bootloader is the ASP boot loader SPL.
	Bootloader uint8
	// TEE is the ASP OS SPL.
	TEE uint8
	// SNP is the SNP firmware SPL.
	SNP uint8
	// Microcode is the lowest current patch level of all cores.
	Microcode uint8
}

func decodeTCB(b []byte, turin bool) TCBVersion {
	if turin {
		return TCBVersion{HasFMC: true, FMC: b[0], Bootloader: b[1], TEE: b[2], SNP: b[3], Microcode: b[7]}
	}
	return TCBVersion{Bootloader: b[0], TEE: b[1], SNP: b[6], Microcode: b[7]}
}

// encode writes t into the 8 bytes of b in the layout HasFMC selects.
func (t TCBVersion) encode(b []byte) {
	clear(b[:8])
	if t.HasFMC {
		b[0], b[1], b[2], b[3], b[7] = t.FMC, t.Bootloader, t.TEE, t.SNP, t.Microcode
		return
	}
	b[0], b[1], b[6], b[7] = t.Bootloader, t.TEE, t.SNP, t.Microcode
}

// Uint64 returns the TCB as the little-endian 64-bit value of its ABI bytes.
func (t TCBVersion) Uint64() uint64 {
	var b [8]byte
	t.encode(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// FirmwareVersion is a firmware major.minor.build triple.
type FirmwareVersion struct {
	Major, Minor, Build uint8
}

// String returns "major.minor.build".
func (v FirmwareVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Build)
}

// GuestPolicy is the POLICY field.
type GuestPolicy uint64

// ABIMinor is the minimum ABI minor version required for the guest.
func (p GuestPolicy) ABIMinor() uint8 { return uint8(p) }

// ABIMajor is the minimum ABI major version required for the guest.
func (p GuestPolicy) ABIMajor() uint8 { return uint8(p >> 8) }

// SMTAllowed reports bit 16: SMT is allowed.
func (p GuestPolicy) SMTAllowed() bool { return p&(1<<16) != 0 }

// MigrateMAAllowed reports bit 18: association with a migration agent is allowed.
func (p GuestPolicy) MigrateMAAllowed() bool { return p&(1<<18) != 0 }

// DebugAllowed reports bit 19: debugging is allowed.
func (p GuestPolicy) DebugAllowed() bool { return p&(1<<19) != 0 }

// SingleSocketRequired reports bit 20: the guest may run on one socket only.
func (p GuestPolicy) SingleSocketRequired() bool { return p&(1<<20) != 0 }

// CXLAllowed reports bit 21.
func (p GuestPolicy) CXLAllowed() bool { return p&(1<<21) != 0 }

// MemAES256XTS reports bit 22: AES-256-XTS memory encryption is required.
func (p GuestPolicy) MemAES256XTS() bool { return p&(1<<22) != 0 }

// RAPLDisabled reports bit 23: RAPL must be disabled.
func (p GuestPolicy) RAPLDisabled() bool { return p&(1<<23) != 0 }

// CiphertextHiding reports bit 24: ciphertext hiding must be enabled.
func (p GuestPolicy) CiphertextHiding() bool { return p&(1<<24) != 0 }

// PlatformInfo is the PLATFORM_INFO field.
type PlatformInfo uint64

// SMTEnabled reports bit 0: SMT is enabled on the platform.
func (p PlatformInfo) SMTEnabled() bool { return p&1 != 0 }

// TSMEEnabled reports bit 1: TSME is enabled on the platform.
func (p PlatformInfo) TSMEEnabled() bool { return p&(1<<1) != 0 }

// ECCEnabled reports bit 2: the platform uses ECC memory.
func (p PlatformInfo) ECCEnabled() bool { return p&(1<<2) != 0 }

// RAPLDisabled reports bit 3.
func (p PlatformInfo) RAPLDisabled() bool { return p&(1<<3) != 0 }

// CiphertextHidingEnabled reports bit 4.
func (p PlatformInfo) CiphertextHidingEnabled() bool { return p&(1<<4) != 0 }

// Signature is the report signature: ECDSA r and s, each 72 bytes,
// little-endian, zero-extended.
type Signature struct {
	R, S [sigComponentSize]byte
}

// Report is a parsed SEV-SNP attestation report (every ABI field; reserved
// fields are not kept). Fields added by later report versions are zero in
// earlier ones: CPUID_* need version 3, the mitigation vectors version 5.
type Report struct {
	Version          uint32
	GuestSVN         uint32
	Policy           GuestPolicy
	FamilyID         [16]byte
	ImageID          [16]byte
	VMPL             uint32
	SignatureAlgo    uint32
	CurrentTCB       TCBVersion
	PlatformInfo     PlatformInfo
	KeyInfo          uint32 // AUTHOR_KEY_EN bit 0, MASK_CHIP_KEY bit 1, SIGNING_KEY bits 4:2
	ReportData       [64]byte
	Measurement      [48]byte
	HostData         [32]byte
	IDKeyDigest      [48]byte
	AuthorKeyDigest  [48]byte
	ReportID         [32]byte
	ReportIDMA       [32]byte
	ReportedTCB      TCBVersion
	CPUIDFamilyID    uint8 // version 3 and later
	CPUIDModelID     uint8 // version 3 and later
	CPUIDStepping    uint8 // version 3 and later
	ChipID           [64]byte
	CommittedTCB     TCBVersion
	Current          FirmwareVersion
	Committed        FirmwareVersion
	LaunchTCB        TCBVersion
	LaunchMitVector  uint64 // version 5 and later
	CurrentMitVector uint64 // version 5 and later
	Signature        Signature

	raw [ReportSize]byte
}

// AuthorKeyEn reports whether the digest of the author key is in
// AUTHOR_KEY_DIGEST.
func (r *Report) AuthorKeyEn() bool { return r.KeyInfo&1 != 0 }

// MaskChipKey reports whether MASK_CHIP_KEY was set (the report is then not
// signed: the signature is zero).
func (r *Report) MaskChipKey() bool { return r.KeyInfo&2 != 0 }

// SigningKey returns the SIGNING_KEY field.
func (r *Report) SigningKey() SigningKey { return SigningKey((r.KeyInfo >> 2) & 7) }

// Raw returns a copy of the 1184 ABI bytes the report was parsed from (or
// rebuilt into, for serde-JSON evidence).
func (r *Report) Raw() []byte {
	b := make([]byte, ReportSize)
	copy(b, r.raw[:])
	return b
}

// SignedBytes returns a copy of bytes 0x000–0x29F, the signed part.
func (r *Report) SignedBytes() []byte {
	b := make([]byte, SignedSize)
	copy(b, r.raw[:SignedSize])
	return b
}

// turinLayout reports whether the TCB fields use the Turin byte layout:
// CPUID family 0x1A (needs report version 3 or later).
func turinLayout(version uint32, family uint8) bool {
	return version >= 3 && family == 0x1A
}

// ParseReport parses a 1184-byte ABI attestation report of version 2 to 5.
//
// The length must be exactly ReportSize. The report is a fixed-size
// structure and every producer Sigil accepts (SNP_GET_REPORT, configfs-tsm
// outblob, Trustee's JSON, the Azure HCL report at offset 0x20) yields
// exactly that many bytes, so trailing bytes are rejected rather than
// silently ignored; callers that embed a report slice it out first.
func ParseReport(raw []byte) (*Report, error) {
	if len(raw) != ReportSize {
		return nil, fmt.Errorf("%w: report is %d bytes, want %d", ErrMalformedReport, len(raw), ReportSize)
	}
	le := binary.LittleEndian
	r := &Report{}
	copy(r.raw[:], raw)
	b := r.raw[:]
	r.Version = le.Uint32(b[offVersion:])
	if r.Version < minParsableVersion || r.Version > maxParsableVersion {
		return nil, fmt.Errorf("%w: unsupported report version %d", ErrMalformedReport, r.Version)
	}
	r.GuestSVN = le.Uint32(b[offGuestSVN:])
	r.Policy = GuestPolicy(le.Uint64(b[offPolicy:]))
	copy(r.FamilyID[:], b[offFamilyID:])
	copy(r.ImageID[:], b[offImageID:])
	r.VMPL = le.Uint32(b[offVMPL:])
	r.SignatureAlgo = le.Uint32(b[offSigAlgo:])
	r.PlatformInfo = PlatformInfo(le.Uint64(b[offPlatformInfo:]))
	r.KeyInfo = le.Uint32(b[offKeyInfo:])
	copy(r.ReportData[:], b[offReportData:])
	copy(r.Measurement[:], b[offMeasurement:])
	copy(r.HostData[:], b[offHostData:])
	copy(r.IDKeyDigest[:], b[offIDKeyDigest:])
	copy(r.AuthorKeyDigest[:], b[offAuthorKeyDigest:])
	copy(r.ReportID[:], b[offReportID:])
	copy(r.ReportIDMA[:], b[offReportIDMA:])
	if r.Version >= 3 {
		r.CPUIDFamilyID = b[offCPUIDFamID]
		r.CPUIDModelID = b[offCPUIDModID]
		r.CPUIDStepping = b[offCPUIDStep]
	}
	turin := turinLayout(r.Version, r.CPUIDFamilyID)
	r.CurrentTCB = decodeTCB(b[offCurrentTCB:], turin)
	r.ReportedTCB = decodeTCB(b[offReportedTCB:], turin)
	r.CommittedTCB = decodeTCB(b[offCommittedTCB:], turin)
	r.LaunchTCB = decodeTCB(b[offLaunchTCB:], turin)
	copy(r.ChipID[:], b[offChipID:])
	r.Current = FirmwareVersion{Major: b[offCurrentMajor], Minor: b[offCurrentMinor], Build: b[offCurrentBuild]}
	r.Committed = FirmwareVersion{Major: b[offCommittedMajor], Minor: b[offCommittedMinor], Build: b[offCommittedBuild]}
	if r.Version >= 5 {
		r.LaunchMitVector = le.Uint64(b[offLaunchMitVector:])
		r.CurrentMitVector = le.Uint64(b[offCurrentMitVector:])
	}
	copy(r.Signature.R[:], b[offSignatureR:])
	copy(r.Signature.S[:], b[offSignatureS:])
	return r, nil
}

// Product returns the processor generation from the report's CPUID fields,
// mapped as Trustee does: family 0x19 models 0x00–0x0F Milan, 0x10–0x1F and
// 0xA0–0xAE Genoa; family 0x1A models 0x00–0x11 Turin. Reports older than
// version 3 carry no CPUID and yield ErrUnknownProduct.
func (r *Report) Product() (Product, error) {
	if r.Version < 3 {
		return "", fmt.Errorf("%w: report version %d has no CPUID fields", ErrUnknownProduct, r.Version)
	}
	return productFromCPUID(r.CPUIDFamilyID, r.CPUIDModelID)
}

func productFromCPUID(family, model uint8) (Product, error) {
	switch family {
	case 0x19:
		switch {
		case model <= 0x0F:
			return Milan, nil
		case model >= 0x10 && model <= 0x1F, model >= 0xA0 && model < 0xAF:
			// Trustee writes the second Genoa range half-open (0xA0..0xAF).
			return Genoa, nil
		}
	case 0x1A:
		if model <= 0x11 {
			return Turin, nil
		}
	default:
		return "", fmt.Errorf("%w: CPUID family %#x", ErrUnknownProduct, family)
	}
	return "", fmt.Errorf("%w: CPUID family %#x model %#x", ErrUnknownProduct, family, model)
}

// Claims returns the claims the default policy reads, named and encoded as
// Trustee's snp verifier emits them: integers as JSON numbers
// (json.Number), flags as booleans, byte fields as lower-case hex.
//
//	policy_abi_major, policy_abi_minor          number
//	policy_smt_allowed, policy_migrate_ma,
//	policy_debug_allowed, policy_single_socket  bool
//	reported_tcb_bootloader, _tee, _snp,
//	_microcode                                  number
//	platform_tsme_enabled, platform_smt_enabled bool
//	measurement (48 B), report_data (64 B),
//	init_data (HOST_DATA, 32 B), chip_id (64 B) hex
//
// chip_id is the report's CHIP_ID (all zero when the guest policy masks
// it), as Trustee's current snp verifier adds it.
func (r *Report) Claims() map[string]any {
	num := func(v uint8) json.Number { return json.Number(strconv.Itoa(int(v))) }
	return map[string]any{
		"policy_abi_major":        num(r.Policy.ABIMajor()),
		"policy_abi_minor":        num(r.Policy.ABIMinor()),
		"policy_smt_allowed":      r.Policy.SMTAllowed(),
		"policy_migrate_ma":       r.Policy.MigrateMAAllowed(),
		"policy_debug_allowed":    r.Policy.DebugAllowed(),
		"policy_single_socket":    r.Policy.SingleSocketRequired(),
		"reported_tcb_bootloader": num(r.ReportedTCB.Bootloader),
		"reported_tcb_tee":        num(r.ReportedTCB.TEE),
		"reported_tcb_snp":        num(r.ReportedTCB.SNP),
		"reported_tcb_microcode":  num(r.ReportedTCB.Microcode),
		"platform_tsme_enabled":   r.PlatformInfo.TSMEEnabled(),
		"platform_smt_enabled":    r.PlatformInfo.SMTEnabled(),
		"measurement":             hex.EncodeToString(r.Measurement[:]),
		"report_data":             hex.EncodeToString(r.ReportData[:]),
		"init_data":               hex.EncodeToString(r.HostData[:]),
		"chip_id":                 hex.EncodeToString(r.ChipID[:]),
	}
}
