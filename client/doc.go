// Package client is Sigil's Go client for a KBS speaking the Trustee/CoCo
// protocol (RCAR, version 0.4.0).
//
// RCAR performs the background-check handshake (/auth, /attest) with an
// EvidenceProvider and fetches resources with the session cookie, exactly as
// the Rust kbs_protocol client does. TokenClient fetches resources with an
// attestation token ("passport" mode). Admin drives the KBS admin endpoints.
//
// Failures reported by the server are returned as *ServerError; resource
// lookups additionally wrap ErrResourceNotFound or ErrUnauthorized so callers
// can use errors.Is.
package client
