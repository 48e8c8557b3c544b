package admin

import (
	"errors"
)

// DenyKind classifies an AccessDeniedError.
type DenyKind int

const (
	// DenyAllMode: the DenyAll authorization mode is enabled.
	DenyAllMode DenyKind = iota + 1
	// Unverified: no identity provider verified the token.
	Unverified
	// BadClaims: a verified token lacks a usable `role` claim.
	BadClaims
	// RoleNotAllowed: no ACL entry of the role matches the request URI.
	RoleNotAllowed
)

// Reason texts, as Trustee reports them.
const (
	reasonDenyAll    = "Admin access denied as DenyAll authorization_mode is enabled"
	reasonUnverified = "Cannot verify token with any of the issuers"
)

// AccessDeniedError is an admin denial. Its Error() text is Trustee's admin
// error text, "Admin access denied: <reason>", fit to be wrapped into the
// KBS AdminAuthAccess / AdminAuthInitialization details. Cause (via
// Unwrap) holds the detail worth logging, such as per-provider
// verification failures; it is never part of Error().
type AccessDeniedError struct {
	Kind   DenyKind
	Reason string
	// Role and URI are set for RoleNotAllowed.
	Role, URI string
	Cause     error
}

func (e *AccessDeniedError) Error() string { return "Admin access denied: " + e.Reason }

// Unwrap returns the underlying cause, if any.
func (e *AccessDeniedError) Unwrap() error { return e.Cause }

// BearerHeaderError reports a missing or garbled Authorization header. Its
// Error() text is "Failed to parse HTTP Auth Bearer header".
type BearerHeaderError struct {
	Cause error
}

func (e *BearerHeaderError) Error() string { return "Failed to parse HTTP Auth Bearer header" }

// Unwrap returns the underlying cause.
func (e *BearerHeaderError) Unwrap() error { return e.Cause }

// ErrUnanchoredRegex is returned by New for an ACL regex that does not
// start with "^/kbs" and end with "$".
//
//lint:ignore ST1005 Trustee's exact text, which clients match.
var ErrUnanchoredRegex = errors.New("Admin Role regex must be anchored.")
