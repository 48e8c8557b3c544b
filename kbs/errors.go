package kbs

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sigil-attestation/sigil/protocol"
)

// Error variants, named as Trustee names them (clients match on them).
const (
	VariantAdminAuthAccess         = "AdminAuthAccess"
	VariantAdminAuthInitialization = "AdminAuthInitialization"
	VariantAttestationError        = "AttestationError"
	VariantPluginNotFound          = "PluginNotFound"
	VariantPluginInternalError     = "PluginInternalError"
	VariantPolicyDeny              = "PolicyDeny"
	VariantParsePolicyError        = "ParsePolicyError"
	VariantPolicyEngineError       = "PolicyEngineError"
	VariantRvpsError               = "RvpsError"
	VariantSerdeError              = "SerdeError"
	VariantTokenNotFound           = "TokenNotFound"
	VariantTokenVerifierError      = "TokenVerifierError"
	VariantJweError                = "JweError"
	VariantInvalidRequestPath      = "InvalidRequestPath"
	// Sigil additions (no Trustee equivalent; Trustee's actix layer answers
	// these with non-JSON bodies).
	VariantPayloadTooLarge  = "PayloadTooLarge"
	VariantMethodNotAllowed = "MethodNotAllowed"
	VariantHeaderTooLarge   = "RequestHeaderFieldsTooLarge"
	// VariantTooManyConnections: the connection limit is reached (503).
	VariantTooManyConnections = "TooManyConnections"
	// VariantTooManySessions: the live-session bound is reached (503).
	VariantTooManySessions = "TooManySessions"
	// VariantStorageUnavailable: the storage backend cannot be reached; the
	// request did nothing and may be retried (503).
	VariantStorageUnavailable = "StorageUnavailable"
)

// Error is a KBS error: what the client sees (variant, detail, status) and
// the internal cause, which is only logged.
type Error struct {
	Variant string
	Detail  string
	Status  int
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Variant, e.Detail, e.Cause)
	}
	return e.Variant + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Cause }

// newError builds an Error with Trustee's status rule: 404 for unknown
// plugins and paths, 401 for everything else.
func newError(variant, detail string, cause error) *Error {
	status := http.StatusUnauthorized
	switch variant {
	case VariantPluginNotFound, VariantInvalidRequestPath:
		status = http.StatusNotFound
	case VariantPayloadTooLarge:
		status = http.StatusRequestEntityTooLarge
	case VariantMethodNotAllowed:
		status = http.StatusMethodNotAllowed
	case VariantHeaderTooLarge:
		status = http.StatusRequestHeaderFieldsTooLarge
	case VariantTooManySessions, VariantStorageUnavailable, VariantTooManyConnections:
		status = http.StatusServiceUnavailable
	}
	return &Error{Variant: variant, Detail: detail, Status: status, Cause: cause}
}

func errAttestAuth(cause error) *Error {
	return newError(VariantAttestationError, "Attestation error: RCAR handshake Auth failed: "+cause.Error(), cause)
}

func errAttest(cause error) *Error {
	return newError(VariantAttestationError, "Attestation error: RCAR handshake Attest failed", cause)
}

func errPluginNotFound(name string) *Error {
	return newError(VariantPluginNotFound, fmt.Sprintf("Plugin %s not found", name), nil)
}

func writeError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(protocol.ErrorInformation{Type: protocol.ErrorTypePrefix + e.Variant, Detail: e.Detail})
	w.Header().Set("Content-Type", "application/json")
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
