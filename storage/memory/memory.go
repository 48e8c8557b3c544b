// Package memory is the in-process storage backend (Trustee's "Memory"
// storage type). Data lives in one map per namespace and is lost when the
// process exits.
//
// Each namespace has its own RWMutex, so readers of one namespace never wait
// on writers of another and concurrent Gets never block each other; there is
// no process-wide lock on the read path.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/sigil-attestation/sigil/storage"
)

// Backend is an in-memory storage.Backend. The zero value is not usable; call
// New.
type Backend struct {
	spaces sync.Map // namespace name -> *store
}

// New returns an empty in-memory backend.
func New() *Backend { return &Backend{} }

// Namespace returns the store for name, creating it on first use. Every call
// with the same name returns a view of the same data.
func (b *Backend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("memory: empty namespace name: %w", storage.ErrInvalidKey)
	}
	if s, ok := b.spaces.Load(name); ok {
		return s.(*store), nil
	}
	s, _ := b.spaces.LoadOrStore(name, &store{m: make(map[string][]byte)})
	return s.(*store), nil
}

// Close releases nothing; the data stays readable through existing stores.
func (b *Backend) Close() error { return nil }

type store struct {
	mu sync.RWMutex
	m  map[string][]byte
}

var _ storage.Backend = (*Backend)(nil)

func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("memory: get %q: %w", key, storage.ErrNotFound)
	}
	return clone(v), nil
}

func (s *store) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := clone(value)
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
	return nil
}

func (s *store) Create(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return fmt.Errorf("memory: create %q: %w", key, storage.ErrExists)
	}
	s.m[key] = v
	return nil
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		return fmt.Errorf("memory: delete %q: %w", key, storage.ErrNotFound)
	}
	delete(s.m, key)
	return nil
}

func (s *store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys, nil
}

// clone copies v so callers can neither alter stored data nor see later
// writes; it never returns nil, so an empty stored value reads back as an
// empty, non-nil slice.
func clone(v []byte) []byte {
	out := make([]byte, len(v))
	copy(out, v)
	return out
}
