package nras

import (
	"errors"
	"fmt"
)

// Sentinel errors; every error of this package wraps one of them (check with
// errors.Is).
var (
	// ErrRequest: the caller's input cannot be sent (unknown kind, bad
	// nonce, no devices, mixed or wrong architectures, undecodable evidence).
	ErrRequest = errors.New("nras: invalid attestation request")
	// ErrTransport: the HTTP exchange failed (connection, timeout, read).
	ErrTransport = errors.New("nras: request failed")
	// ErrStatus: NRAS answered with a non-200 status (see *StatusError).
	ErrStatus = errors.New("nras: error status")
	// ErrResponseTooLarge: the response body exceeds the configured bound.
	ErrResponseTooLarge = errors.New("nras: response too large")
	// ErrMalformed: the response is not a well-formed detached EAT (shape,
	// JWT syntax, claim types).
	ErrMalformed = errors.New("nras: malformed detached EAT")
	// ErrAlgorithm: a JWT header names an algorithm other than ES384, or
	// carries critical extensions.
	ErrAlgorithm = errors.New("nras: unsupported JWT algorithm")
	// ErrUnknownKey: no JWKS key has the JWT's kid (after a refresh, when
	// allowed).
	ErrUnknownKey = errors.New("nras: unknown signing key")
	// ErrSignature: a JWT signature does not verify.
	ErrSignature = errors.New("nras: JWT signature invalid")
	// ErrExpired: a token is expired, not yet valid, issued in the future or
	// has no exp.
	ErrExpired = errors.New("nras: token not valid at this time")
	// ErrIssuer: iss is not the expected issuer.
	ErrIssuer = errors.New("nras: unexpected token issuer")
	// ErrNonce: eat_nonce is not the request nonce.
	ErrNonce = errors.New("nras: eat_nonce does not match the request nonce")
	// ErrSubmods: the overall token's submods do not match the device tokens
	// (digest mismatch, missing or extra device).
	ErrSubmods = errors.New("nras: submods do not match the device tokens")
	// ErrDevices: the response's devices are not the ones requested.
	ErrDevices = errors.New("nras: response devices do not match the request")
	// ErrJWKS: the JWKS could not be fetched or holds no usable key.
	ErrJWKS = errors.New("nras: JWKS unusable")
	// ErrDeviceNonceMismatch: a device claims
	// x-nvidia-<gpu|switch>-attestation-report-nonce-match other than true
	// (returned by Result.CheckNonceMatch).
	ErrDeviceNonceMismatch = errors.New("nras: device attestation report nonce does not match")
)

// StatusError is returned for a non-200 answer. It wraps ErrStatus.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the error message from the body (its "message", "error",
	// "description" or "detail" field, else the start of the body).
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("nras: HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("nras: HTTP %d: %s", e.StatusCode, e.Message)
}

// Unwrap makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Unwrap() error { return ErrStatus }
