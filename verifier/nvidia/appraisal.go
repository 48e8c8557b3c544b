package nvidia

import (
	"context"
	"crypto/x509"
	"time"
)

// DeviceInfo is what a MeasurementAppraiser needs from a verified report.
// It is built only for devices whose evidence is genuine (signature, chain,
// FWID and nonce checks passed).
type DeviceInfo struct {
	Arch Arch
	// UUID is the evidence's uuid ("unknown" when absent).
	UUID string
	// DriverVersion is the GPU driver version ("550.90.07"); "" on switches.
	DriverVersion string
	// VBIOSVersion is the GPU VBIOS or switch BIOS version in upper case
	// ("96.00.9F.00.01", "96.10.55.00.01"), as RIM ids and NRAS use it.
	VBIOSVersion string
	// Project, ProjectSKU, ChipSKU and ChipInfo are the opaque strings
	// (types 17, 18, 15, 35) without trailing NULs; "" when absent.
	Project, ProjectSKU, ChipSKU, ChipInfo string
	// NVDEC0Status is the raw opaque type 11 (0x55 disabled, 0xAA
	// enabled); nil when absent. Needed for the MSR 35 rule.
	NVDEC0Status []byte
	// Measurements maps the 1-based SPDM measurement index to the value in
	// lower-case hex (RIM index = SPDM index − 1).
	Measurements map[int]string
	// Opaque holds every opaque TLV by type (raw bytes).
	Opaque map[uint16][]byte
}

// CertChainStatus is the NRAS v3 cert-chain claim object.
type CertChainStatus struct {
	// Status is "valid", "invalid", "expired" or "revoked".
	Status string
	// OCSPStatus is "good", "revoked", "unknown" or "not-checked".
	OCSPStatus string
	// RevocationReason is e.g. "certificate_hold"; "" for none.
	RevocationReason string
	// Expiration is the earliest notAfter of the chain; zero if unknown.
	Expiration time.Time
}

// RIMStatus is the outcome of fetching and verifying one RIM.
type RIMStatus struct {
	// ID is the RIM id (NV_GPU_DRIVER_GH100_550.90.07, …).
	ID                    string
	Fetched               bool
	SchemaValidated       bool
	SignatureVerified     bool
	VersionMatch          bool
	MeasurementsAvailable bool
	// CertChain is the RIM signing chain status; nil when not checked.
	CertChain *CertChainStatus
	// Error describes the first failure; "" when none.
	Error string
}

// MeasurementMismatch is one golden/runtime difference.
type MeasurementMismatch struct {
	// Index is the 0-based RIM index (SPDM index − 1).
	Index int
	// Source is "DRIVER", "VBIOS" or "BIOS".
	Source       string
	GoldenSize   int
	GoldenValues []string
	RuntimeSize  int
	RuntimeValue string
}

// MeasurementResult is the outcome of RIM-based appraisal.
type MeasurementResult struct {
	// Driver is the driver RIM (GPUs); nil on switches.
	Driver *RIMStatus
	// VBIOS is the VBIOS RIM (GPUs) or the switch BIOS RIM (switches).
	VBIOS *RIMStatus
	// IndexNoConflict is false when an active index is bound by both RIMs.
	IndexNoConflict bool
	// Success is true when every active golden measurement matched
	// (measres "success").
	Success bool
	// Reason explains why Success is false, accurately: whether the
	// measurements were compared and differ, or were not compared at all
	// (a RIM missing or untrusted, conflicting RIMs, nothing to compare).
	// It becomes ClaimMeasresReason; "" lets the verifier derive one.
	Reason string
	// Mismatches lists the measurements that did not match.
	Mismatches []MeasurementMismatch
	// OEMID is the RIM FirmwareManufacturerId ("5703"); "" if unknown.
	OEMID string
	// Warnings become x-nvidia-attestation-warning (joined).
	Warnings []string
}

// MeasurementAppraiser fetches and verifies the reference integrity
// manifests of a device (driver + VBIOS, or switch BIOS) and compares
// their golden measurements with the report's.
type MeasurementAppraiser interface {
	// Appraise returns the outcome; an error means appraisal could not be
	// carried out (e.g. the RIM service is unreachable), which yields
	// measres "fail" with the reason "measurements not compared: <error>".
	Appraise(ctx context.Context, dev DeviceInfo) (*MeasurementResult, error)
}

// RevocationChecker checks a verified device chain for revocation (OCSP).
// chain is the full chain, leaf first and root last; NVIDIA's responder
// serves indices 1…n-2 only, which the checker is expected to know.
type RevocationChecker interface {
	// CheckChain returns status "good", "revoked" or "unknown" and a
	// detail (the revocation reason for "revoked", e.g.
	// "certificate_hold"). An error yields OCSP status "unknown".
	CheckChain(ctx context.Context, chain []*x509.Certificate) (status string, detail string, err error)
}
