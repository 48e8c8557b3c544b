// Package storage defines the key-value interface every piece of Sigil state
// (resources, policies, reference values, sessions) is kept behind.
//
// A Backend hands out one Store per namespace. Namespaces and key encodings
// follow Trustee so that data written by either is readable by the other.
// Implementations live in subpackages (memory, localfs, localjson, postgres,
// redis) and must be safe for concurrent use without a process-wide lock.
package storage

import (
	"context"
	"errors"
)

// Namespaces used by Sigil (identical to Trustee's).
const (
	NamespaceKBS            = "kbs"                        // resource policy
	NamespaceRepository     = "repository"                 // resources
	NamespaceSession        = "kbs_protocol_session"       // RCAR sessions
	NamespaceASPolicy       = "attestation_service_policy" // AS policies, key "<id>.rego"
	NamespaceReferenceValue = "reference_value"            // RVPS
)

var (
	// ErrNotFound is returned by Get and Delete when the key does not exist.
	ErrNotFound = errors.New("storage: key not found")
	// ErrExists is returned by Create when the key already exists.
	ErrExists = errors.New("storage: key already exists")
	// ErrInvalidKey is returned when a backend cannot represent a key.
	ErrInvalidKey = errors.New("storage: invalid key")
)

// Store is one namespace of a backend.
type Store interface {
	// Get returns the value of key or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set writes key atomically, overwriting any previous value.
	Set(ctx context.Context, key string, value []byte) error
	// Create writes key only if it does not exist yet, else ErrExists.
	Create(ctx context.Context, key string, value []byte) error
	// Delete removes key, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error
	// List returns all keys of the namespace, in no particular order.
	List(ctx context.Context) ([]string, error)
}

// Backend opens namespaces.
type Backend interface {
	Namespace(ctx context.Context, name string) (Store, error)
	Close() error
}

// VolatileOpener is an optional capability of a Backend: a namespace whose
// writes stay atomic but need not survive a crash (no fsync). The KBS keeps
// RCAR sessions, which live minutes, in such a namespace when the backend
// offers one; losing them only makes guests attest again.
type VolatileOpener interface {
	VolatileNamespace(ctx context.Context, name string) (Store, error)
}
