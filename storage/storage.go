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
	"time"
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
	// ErrUnavailable wraps errors of a backend that cannot be reached (a
	// database down or restarting). The operation may or may not have taken
	// effect (a reply lost after the commit); every Sigil write is a single
	// idempotent statement, so it may be retried. The KBS answers 503 with
	// Retry-After.
	ErrUnavailable = errors.New("storage: backend unavailable")
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

// Expirer is an optional capability of a Store: writes whose key the
// backend itself deletes after ttl (Redis's native expiry). The KBS keeps
// RCAR sessions that way when the store offers it, with no sweeper.
type Expirer interface {
	// SetTTL is Set with an expiry.
	SetTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// CreateTTL is Create with an expiry.
	CreateTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Watcher is an optional capability of a Backend: change notifications for
// keys written by any process sharing the backend (PostgreSQL
// LISTEN/NOTIFY). fn gets the namespace and key of each change, or an empty
// key when changes may have been missed (a lost connection). Watch returns
// when ctx ends. Caches of other replicas use it to drop stale entries at
// once; their short TTL remains the bound when notifications are lost.
type Watcher interface {
	Watch(ctx context.Context, fn func(namespace, key string)) error
}

// VolatileOpener is an optional capability of a Backend: a namespace whose
// writes stay atomic but need not survive a crash (no fsync). The KBS keeps
// RCAR sessions, which live minutes, in such a namespace when the backend
// offers one; losing them only makes guests attest again.
type VolatileOpener interface {
	VolatileNamespace(ctx context.Context, name string) (Store, error)
}
