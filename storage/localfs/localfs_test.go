package localfs_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/localfs"
	"github.com/sigil-attestation/sigil/storage/storagetest"
)

func newBackend(t testing.TB) *localfs.Backend {
	t.Helper()
	b, err := localfs.New(filepath.Join(t.TempDir(), "storage"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newBackend(t) })
}

// volatileBackend serves every namespace through VolatileNamespace, so the
// conformance suite checks the no-fsync stores too.
type volatileBackend struct{ *localfs.Backend }

func (v volatileBackend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	return v.VolatileNamespace(ctx, name)
}

func TestConformanceVolatile(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return volatileBackend{newBackend(t)} })
}

// TestVolatileSameLayout: a volatile namespace writes the same files, so a
// durable store (or Trustee) reads them.
func TestVolatileSameLayout(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	v, err := b.VolatileNamespace(ctx, "kbs_protocol_session")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	d, _ := b.Namespace(ctx, "kbs_protocol_session")
	if got, err := d.Get(ctx, "a/b"); err != nil || string(got) != "x" {
		t.Fatalf("durable view: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "kbs_protocol_session", `a\x2Fb`)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkLocalFs(b *testing.B) {
	storagetest.RunBenchmarks(b, func(b *testing.B) storage.Backend { return newBackend(b) })
}

func BenchmarkLocalFsVolatile(b *testing.B) {
	storagetest.RunBenchmarks(b, func(b *testing.B) storage.Backend { return volatileBackend{newBackend(b)} })
}

// TestReadsTrusteeTree reads a directory laid out as Trustee's KBS writes it.
func TestReadsTrusteeTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	if err := os.CopyFS(dir, os.DirFS("testdata/trustee-tree")); err != nil {
		t.Fatal(err)
	}
	b, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		ns, key, want string
	}{
		{storage.NamespaceRepository, "default/test/secret", "shhhhhhh"},
		{storage.NamespaceRepository, "one/two/three", "0123456789abcdef"},
		{storage.NamespaceKBS, "resource-policy", "package policy\n\ndefault allow = true\n"},
		{storage.NamespaceASPolicy, "default_cpu.rego", "package policy\n\ndefault allow = false\n"},
		{storage.NamespaceReferenceValue, "svn", `{"version":"0.1.0","name":"svn","expiration":"2027-01-01T00:00:00Z","value":["1"]}`},
	}
	for _, c := range cases {
		s, err := b.Namespace(ctx, c.ns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, c.key)
		if err != nil {
			t.Fatalf("%s/%s: %v", c.ns, c.key, err)
		}
		if string(got) != c.want {
			t.Errorf("%s/%s = %q; want %q", c.ns, c.key, got, c.want)
		}
	}
	repo, _ := b.Namespace(ctx, storage.NamespaceRepository)
	keys, err := repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"default/test/secret", "one/two/three"}; !slices.Equal(keys, want) {
		t.Errorf("List = %q; want %q", keys, want)
	}
}

// TestWritesTrusteeLayout checks the file names, contents and modes written.
func TestWritesTrusteeLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new", "storage")
	b, err := localfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := b.Namespace(ctx, storage.NamespaceRepository)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "default/key/testfile", []byte("raw\x00bytes")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a/b/c", []byte("created")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{`default\x2Fkey\x2Ftestfile`: "raw\x00bytes", `a\x2Fb\x2Fc`: "created"} {
		p := filepath.Join(root, "repository", name)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("expected file %s: %v", p, err)
		}
		if string(got) != want {
			t.Errorf("%s = %q; want %q", p, got, want)
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v; want 0600", p, st.Mode().Perm())
		}
	}
	for _, d := range []string{root, filepath.Join(root, "repository")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode = %v; want 0700", d, st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "repository"))
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("namespace dir holds %q; want exactly the two value files (no temp files)", names)
	}
}

func TestInvalidKeys(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	s, err := b.Namespace(ctx, storage.NamespaceRepository)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"", ".", "..", "../x", "a/../b", "a/./b", "a/..", "x\\y", "a b", "a:b",
		"rvps:///a:tag", "é", "a\x00b", "a\nb", "~tmp", `a\x2Fb`}
	for _, k := range bad {
		if err := s.Set(ctx, k, []byte("v")); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Set(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := s.Create(ctx, k, []byte("v")); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Create(%q) = %v; want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", k, err)
		}
	}
	good := []string{"a", ".hidden", "a..b", "a/.../b", "/leading", "trailing/", "a//b", "A-Z_0.9"}
	for _, k := range good {
		if err := s.Set(ctx, k, []byte(k)); err != nil {
			t.Errorf("Set(%q): %v", k, err)
		}
	}
	keys, _ := s.List(ctx)
	if len(keys) != len(good) {
		t.Errorf("List = %q; want %q", keys, good)
	}
	// Nothing may have been written outside the namespace directory.
	err = filepath.WalkDir(b.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.Dir(), p)
		if !d.IsDir() && !strings.HasPrefix(rel, "repository"+string(filepath.Separator)) {
			t.Errorf("file outside the namespace: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInvalidNamespaces(t *testing.T) {
	b := newBackend(t)
	for _, n := range []string{"", ".", "..", "a/b", "../x", `a\b`, "a b"} {
		if _, err := b.Namespace(context.Background(), n); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Namespace(%q) = %v; want ErrInvalidKey", n, err)
		}
	}
}

func TestListSkipsForeignEntries(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	s, _ := b.Namespace(ctx, storage.NamespaceKBS)
	if err := s.Set(ctx, "real", []byte("v")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(b.Dir(), storage.NamespaceKBS)
	for _, name := range []string{".sigil-tmp~123", "has space"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"real"}) {
		t.Errorf("List = %q; want [real]", keys)
	}
}

func TestNewRejectsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localfs.New(f); err == nil {
		t.Error("New on a regular file succeeded")
	}
	if _, err := localfs.New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
}

func TestKeyEncoding(t *testing.T) {
	if got := localfs.EncodeKey("default/key/testfile"); got != `default\x2Fkey\x2Ftestfile` {
		t.Errorf("EncodeKey = %q", got)
	}
	if got := localfs.DecodeKey(`one\x2Ftwo\x2Fthree`); got != "one/two/three" {
		t.Errorf("DecodeKey = %q", got)
	}
}

func FuzzKeyConfinement(f *testing.F) {
	for _, s := range []string{"a/b/c", "..", "../../etc/passwd", "a/./b", "x"} {
		f.Add(s)
	}
	root := f.TempDir()
	b, err := localfs.New(root)
	if err != nil {
		f.Fatal(err)
	}
	s, err := b.Namespace(context.Background(), "ns")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := s.Set(context.Background(), key, []byte("v"))
		if err != nil {
			if !errors.Is(err, storage.ErrInvalidKey) {
				// Only over-long names may fail otherwise.
				if len(localfs.EncodeKey(key)) <= 255 {
					t.Fatalf("Set(%q): %v", key, err)
				}
			}
			return
		}
		if !localfs.ValidKey(key) {
			t.Fatalf("invalid key %q accepted", key)
		}
		p := filepath.Join(root, "ns", localfs.EncodeKey(key))
		if filepath.Dir(p) != filepath.Join(root, "ns") {
			t.Fatalf("key %q maps outside the namespace: %s", key, p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("key %q not stored at %s: %v", key, p, err)
		}
		if err := s.Delete(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOpenRemovesCrashTemps: a crash between writing a temporary file and
// renaming it leaves the file behind; opening the namespace removes it and
// keeps every key.
func TestOpenRemovesCrashTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Namespace(ctx, "repository")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Set(ctx, "a/b/c", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "repository", ".sigil-tmp~123456")
	if err := os.WriteFile(leftover, []byte("half a secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = b.Namespace(ctx, "repository")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
	if v, err := st.Get(ctx, "a/b/c"); err != nil || string(v) != "kept" {
		t.Errorf("Get = %q, %v", v, err)
	}
}
