// Package localjson is the one-JSON-file-per-namespace storage backend
// (Trustee's "LocalJson" storage type), on-disk compatible with Trustee.
//
// Layout: the file <dir>/<namespace> (no extension — Trustee's README says
// ".json" but its code adds none) holds one JSON object mapping each key to
// the URL-safe base64 encoding, with padding, of its value:
//
//	{"default/key/testfile":"c2hoaGhoaGg=", ...}
//
// The file is created as "{}" when the namespace is opened. Any key is
// accepted. Every write rewrites the whole file atomically (temporary file in
// the same directory, fsync, rename) while holding that namespace's mutex, so
// writers of different namespaces never contend.
//
// Each namespace keeps the decoded file in memory and revalidates it with a
// stat (modification time, size, inode) before every operation; if another
// process replaced the file, it is read again. Concurrent writers in
// different processes are not coordinated (there is no file lock, as in
// Trustee), so the last writer wins. Values stored by Trustee in other base64
// flavours (unpadded, standard alphabet) are read too.
package localjson

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/storage"
)

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// Backend stores each namespace as one JSON file in a directory.
type Backend struct {
	dir    string
	mu     sync.Mutex // guards spaces (Namespace only, not the data path)
	spaces map[string]*store
}

var _ storage.Backend = (*Backend)(nil)

// New returns a backend that keeps its files in dir, creating dir (mode
// 0700) if needed. A relative dir is relative to the working directory.
func New(dir string) (*Backend, error) {
	if dir == "" {
		return nil, errors.New("localjson: empty directory path")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("localjson: create %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("localjson: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("localjson: %s is not a directory", dir)
	}
	return &Backend{dir: dir, spaces: make(map[string]*store)}, nil
}

// Dir returns the directory holding the namespace files.
func (b *Backend) Dir() string { return b.dir }

// Namespace opens (creating as "{}" if missing) the file <dir>/<name>. The
// name must be a plain file name: non-empty, no "/" or NUL, not "." or "..".
func (b *Backend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" || name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\\\x00") {
		return nil, fmt.Errorf("localjson: namespace %q: %w", name, storage.ErrInvalidKey)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.spaces[name]; ok {
		return s, nil
	}
	s := &store{path: filepath.Join(b.dir, name)}
	if err := s.init(); err != nil {
		return nil, err
	}
	b.spaces[name] = s
	return s, nil
}

// Close is a no-op: files are not held open between calls.
func (b *Backend) Close() error { return nil }

// fileID identifies one version of the file on disk.
type fileID struct {
	mod  time.Time
	size int64
	ino  uint64
}

func idOf(st fs.FileInfo) fileID {
	return fileID{mod: st.ModTime(), size: st.Size(), ino: inode(st)}
}

type store struct {
	path string

	mu   sync.RWMutex
	data map[string][]byte
	id   fileID
}

func (s *store) init() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		_, werr := f.WriteString("{}")
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("localjson: create %s: %w", s.path, werr)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("localjson: create %s: %w", s.path, err)
	}
	return s.reloadLocked()
}

// reloadLocked reads the file into memory. s.mu must be held for writing.
func (s *store) reloadLocked() error {
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("localjson: read %s: %w", s.path, err)
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("localjson: stat %s: %w", s.path, err)
	}
	data, err := decodeFile(raw)
	if err != nil {
		return fmt.Errorf("localjson: %s: %w", s.path, err)
	}
	s.data, s.id = data, idOf(st)
	return nil
}

func decodeFile(raw []byte) (map[string][]byte, error) {
	var enc map[string]string
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string][]byte{}, nil
	}
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("not a JSON object of base64 strings: %w", err)
	}
	data := make(map[string][]byte, len(enc))
	for k, v := range enc {
		b, err := decodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", k, err)
		}
		data[k] = b
	}
	return data, nil
}

func decodeValue(v string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		b, err := enc.DecodeString(v)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func encodeFile(data map[string][]byte) ([]byte, error) {
	enc := make(map[string]string, len(data))
	for k, v := range data {
		enc[k] = base64.URLEncoding.EncodeToString(v)
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(enc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// fresh reports whether the in-memory copy matches the file on disk.
func (s *store) fresh() (bool, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return false, fmt.Errorf("localjson: stat %s: %w", s.path, err)
	}
	return idOf(st) == s.id, nil
}

// read runs fn with an up-to-date view of the data under the read lock.
func (s *store) read(fn func(map[string][]byte) error) error {
	s.mu.RLock()
	ok, err := s.fresh()
	if err == nil && ok {
		defer s.mu.RUnlock()
		return fn(s.data)
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.fresh(); err != nil {
		return err
	} else if !ok {
		if err := s.reloadLocked(); err != nil {
			return err
		}
	}
	return fn(s.data)
}

// write applies fn to a copy of the data and persists the result.
func (s *store) write(fn func(map[string][]byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.fresh(); err != nil {
		return err
	} else if !ok {
		if err := s.reloadLocked(); err != nil {
			return err
		}
	}
	next := make(map[string][]byte, len(s.data)+1)
	for k, v := range s.data {
		next[k] = v // values are never mutated in place, sharing is safe
	}
	if err := fn(next); err != nil {
		return err
	}
	raw, err := encodeFile(next)
	if err != nil {
		return fmt.Errorf("localjson: encode: %w", err)
	}
	id, err := writeAtomic(s.path, raw)
	if err != nil {
		return fmt.Errorf("localjson: write %s: %w", s.path, err)
	}
	s.data, s.id = next, id
	return nil
}

func writeAtomic(path string, raw []byte) (fileID, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp~*")
	if err != nil {
		return fileID{}, err
	}
	tmp := f.Name()
	fail := func(err error) (fileID, error) {
		f.Close()
		_ = os.Remove(tmp)
		return fileID{}, err
	}
	if err := f.Chmod(fileMode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(raw); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fileID{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fileID{}, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return idOf(st), nil
}

func clone(v []byte) []byte {
	out := make([]byte, len(v))
	copy(out, v)
	return out
}

func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := s.read(func(m map[string][]byte) error {
		v, ok := m[key]
		if !ok {
			return fmt.Errorf("localjson: get %q: %w", key, storage.ErrNotFound)
		}
		out = clone(v)
		return nil
	})
	return out, err
}

func (s *store) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := clone(value)
	return s.write(func(m map[string][]byte) error {
		m[key] = v
		return nil
	})
}

func (s *store) Create(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := clone(value)
	return s.write(func(m map[string][]byte) error {
		if _, ok := m[key]; ok {
			return fmt.Errorf("localjson: create %q: %w", key, storage.ErrExists)
		}
		m[key] = v
		return nil
	})
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(func(m map[string][]byte) error {
		if _, ok := m[key]; !ok {
			return fmt.Errorf("localjson: delete %q: %w", key, storage.ErrNotFound)
		}
		delete(m, key)
		return nil
	})
}

func (s *store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := s.read(func(m map[string][]byte) error {
		keys = make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}
