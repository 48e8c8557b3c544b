package rim

import "errors"

// Sentinel errors. Every error returned by this package wraps one of them
// (check with errors.Is).
var (
	// ErrMalformed: the document is not well-formed XML, uses a forbidden
	// construct (DTD, comment, processing instruction, xml:base), exceeds a
	// parser limit, or lacks an element/attribute the RIM format requires.
	ErrMalformed = errors.New("rim: malformed document")
	// ErrUnsupportedAlgorithm: the XML signature uses an algorithm, transform
	// or reference other than the ones NVIDIA uses (C14N 1.1,
	// enveloped-signature, SHA-384, ECDSA-SHA384, Reference URI="").
	ErrUnsupportedAlgorithm = errors.New("rim: unsupported signature algorithm or reference")
	// ErrDigestMismatch: the SHA-384 digest of the canonical document does
	// not equal the signed DigestValue (the body was modified).
	ErrDigestMismatch = errors.New("rim: reference digest mismatch")
	// ErrInvalidSignature: the ECDSA-SHA384 signature over SignedInfo does
	// not verify with the signer certificate's key.
	ErrInvalidSignature = errors.New("rim: invalid signature")
	// ErrCertChain: the signer certificates do not chain to a pinned RIM root.
	ErrCertChain = errors.New("rim: signer certificate chain invalid")
	// ErrCertExpired: a certificate of the signer chain has expired (or is
	// not yet valid) at the verification time.
	ErrCertExpired = errors.New("rim: signer certificate expired or not yet valid")
	// ErrNotFound: the RIM service or offline directory has no RIM with this id.
	ErrNotFound = errors.New("rim: not found")
	// ErrService: the RIM service answered with an error status or an
	// invalid response (id, sha256 or format mismatch).
	ErrService = errors.New("rim: service error")
	// ErrInvalidID: a RIM id or the inputs to build one are invalid.
	ErrInvalidID = errors.New("rim: invalid id")
	// ErrIndexConflict: the driver and VBIOS RIMs define the same
	// measurement index.
	ErrIndexConflict = errors.New("rim: driver and VBIOS measurement index conflict")
	// ErrMeasurements: the runtime measurements cannot be compared (bad hex,
	// more golden measurements than report blocks, bad NVDEC0 status).
	ErrMeasurements = errors.New("rim: invalid measurements")
)
