package nvidia

import "errors"

// Sentinel errors; every error Verify and the helpers return wraps one of
// them (check with errors.Is).
var (
	// ErrEvidence: the evidence JSON is malformed (not the Trustee
	// device_evidence_list shape, no devices, an unknown arch).
	ErrEvidence = errors.New("nvidia: malformed evidence")
	// ErrUnsupportedArch: the device architecture is not HOPPER, BLACKWELL
	// or LS10.
	ErrUnsupportedArch = errors.New("nvidia: unsupported device architecture")
	// ErrMalformedReport: the SPDM report could not be decoded or parsed.
	ErrMalformedReport = errors.New("nvidia: malformed attestation report")
	// ErrSignature: the report signature does not verify with the leaf key.
	ErrSignature = errors.New("nvidia: attestation report signature invalid")
	// ErrCertChain: the device certificate chain is malformed or does not
	// verify to a trusted root.
	ErrCertChain = errors.New("nvidia: device certificate chain invalid")
	// ErrChainLength: the chain does not have exactly ChainLength
	// certificates (wrapped together with ErrCertChain).
	ErrChainLength = errors.New("nvidia: device certificate chain has the wrong length")
	// ErrFWID: the leaf certificate has no FWID extension, or its FWID
	// differs from the report's.
	ErrFWID = errors.New("nvidia: FWID binding invalid")
	// ErrArchMismatch: the declared arch of a device entry is not the
	// architecture its certificates name (leaf and BROM common names), e.g.
	// a Hopper GPU's evidence declared as an LS10 NVSwitch.
	ErrArchMismatch = errors.New("nvidia: declared device architecture does not match the device certificates")
	// ErrDuplicateDevice: one device (same leaf or BROM certificate, or
	// same ueid) appears more than once in one evidence document.
	ErrDuplicateDevice = errors.New("nvidia: the same device appears more than once")
	// ErrNonceMismatch: the SPDM requester nonce is not the expected one.
	ErrNonceMismatch = errors.New("nvidia: SPDM nonce does not match the expected report data")
	// ErrServiceUnavailable is wrapped by a MeasurementAppraiser or
	// RevocationChecker when a vendor service (RIM, OCSP) could not be
	// reached and the deployment is not in offline mode. Verify then fails,
	// as a missing Intel or AMD collateral does: nothing was learned about
	// the device. Any other appraisal failure only marks the device.
	ErrServiceUnavailable = errors.New("nvidia: vendor service unavailable")
)
