// Package localfs is the directory-per-namespace storage backend (Trustee's
// "LocalFs" storage type), on-disk compatible with Trustee's KBS.
//
// Layout: <dir>/<namespace>/<file>, one file per key holding the raw value
// bytes. The file name is the key with every "/" replaced by the four literal
// characters `\x2F`, so "default/key/testfile" is stored in
// <dir>/repository/default\x2Fkey\x2Ftestfile — exactly where Trustee puts it.
//
// Keys are restricted as in Trustee: non-empty, made of [A-Za-z0-9._/-], with
// no "." or ".." path segment. Other keys are rejected with
// storage.ErrInvalidKey. Since the encoded file name never contains a "/", no
// key can name a file outside its namespace directory.
//
// Writes are atomic: the value is written to a temporary file in the same
// directory, fsynced, and renamed over the target (Set) or hard-linked to it
// (Create, which therefore never overwrites). Directories are created with
// mode 0700 and files with 0600. Temporary files are named ".sigil-tmp~…";
// "~" cannot occur in a key, so they never collide with keys and List skips
// them; opening a namespace removes those a crash left behind.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigil-attestation/sigil/storage"
)

const (
	slashEscape = `\x2F`
	tmpPrefix   = ".sigil-tmp~"
	dirMode     = 0o700
	fileMode    = 0o600
)

// Backend stores namespaces as directories below one root directory.
type Backend struct {
	dir string
}

var (
	_ storage.Backend        = (*Backend)(nil)
	_ storage.VolatileOpener = (*Backend)(nil)
)

// New returns a backend rooted at dir, creating dir (mode 0700) if needed.
// A relative dir is used as given, i.e. relative to the working directory.
func New(dir string) (*Backend, error) {
	if dir == "" {
		return nil, errors.New("localfs: empty directory path")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("localfs: create %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("localfs: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("localfs: %s is not a directory", dir)
	}
	return &Backend{dir: dir}, nil
}

// Dir returns the root directory.
func (b *Backend) Dir() string { return b.dir }

// Namespace returns the store for <dir>/<name>, creating the directory.
// name must match [A-Za-z0-9._-]+ and not be "." or "..". Writes are atomic
// and durable (fsynced file and directory).
func (b *Backend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	return b.namespace(ctx, name, true)
}

// VolatileNamespace is Namespace without fsync: writes are still atomic
// (temporary file and rename), but the latest ones may be lost in a crash.
// It implements storage.VolatileOpener.
func (b *Backend) VolatileNamespace(ctx context.Context, name string) (storage.Store, error) {
	return b.namespace(ctx, name, false)
}

func (b *Backend) namespace(ctx context.Context, name string, durable bool) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validNamespace(name) {
		return nil, fmt.Errorf("localfs: namespace %q: %w", name, storage.ErrInvalidKey)
	}
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("localfs: create namespace %s: %w", dir, err)
	}
	if err := removeTemps(dir); err != nil {
		return nil, fmt.Errorf("localfs: namespace %s: %w", dir, err)
	}
	return &store{dir: dir, durable: durable}, nil
}

// removeTemps deletes temporary files a crash left between write and
// rename. A namespace is opened at startup; one directory is served by one
// process (LocalFs is a single-host backend; replicas use Postgres or
// Redis), so no write of another process can be in flight.
func removeTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Close is a no-op: the backend holds no open files between calls.
func (b *Backend) Close() error { return nil }

type store struct {
	dir     string
	durable bool // fsync files and the directory
}

// ValidKey reports whether key is representable by this backend.
func ValidKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !keyByte(key[i]) {
			return false
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func keyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '/'
}

func validNamespace(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || !keyByte(c) {
			return false
		}
	}
	return true
}

// EncodeKey returns the file name Trustee uses for key.
func EncodeKey(key string) string { return strings.ReplaceAll(key, "/", slashEscape) }

// DecodeKey is the inverse of EncodeKey.
func DecodeKey(name string) string { return strings.ReplaceAll(name, slashEscape, "/") }

func (s *store) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("localfs: key %q: %w", key, storage.ErrInvalidKey)
	}
	return filepath.Join(s.dir, EncodeKey(key)), nil
}

func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	v, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("localfs: get %q: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("localfs: get %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (s *store) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	tmp, err := s.writeTemp(value)
	if err != nil {
		return fmt.Errorf("localfs: set %q: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("localfs: set %q: %w", key, err)
	}
	return s.syncDir()
}

func (s *store) Create(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("localfs: create %q: %w", key, storage.ErrExists)
	}
	tmp, err := s.writeTemp(value)
	if err != nil {
		return fmt.Errorf("localfs: create %q: %w", key, err)
	}
	defer os.Remove(tmp)
	// link(2) fails with EEXIST instead of replacing the target, so exactly
	// one of several racing Creates succeeds, and readers never see a
	// partially written file.
	err = os.Link(tmp, p)
	switch {
	case err == nil:
		return s.syncDir()
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("localfs: create %q: %w", key, storage.ErrExists)
	default:
		// File systems without hard links: fall back to O_EXCL, which is
		// still exclusive but exposes the file while it is being written.
		if err := createExclusive(p, value, s.durable); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("localfs: create %q: %w", key, storage.ErrExists)
			}
			return fmt.Errorf("localfs: create %q: %w", key, err)
		}
		return s.syncDir()
	}
}

func createExclusive(p string, value []byte, durable bool) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(value); err != nil {
		f.Close()
		_ = os.Remove(p)
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			_ = os.Remove(p)
			return err
		}
	}
	return f.Close()
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("localfs: delete %q: %w", key, storage.ErrNotFound)
		}
		return fmt.Errorf("localfs: delete %q: %w", key, err)
	}
	return s.syncDir()
}

// List returns the decoded names of the regular files in the namespace
// directory, skipping temporary files and names that do not decode to a valid
// key.
func (s *store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("localfs: list %s: %w", s.dir, err)
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if k := DecodeKey(e.Name()); ValidKey(k) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// writeTemp writes value to a new fsynced temporary file in the namespace
// directory and returns its path.
func (s *store) writeTemp(value []byte) (string, error) {
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		_ = os.Remove(name)
		return "", err
	}
	if err := f.Chmod(fileMode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(value); err != nil {
		return fail(err)
	}
	if s.durable {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir makes a rename, link or unlink in the namespace directory durable.
func (s *store) syncDir() error {
	if !s.durable {
		return nil
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("localfs: sync %s: %w", s.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("localfs: sync %s: %w", s.dir, err)
	}
	return nil
}
