package localjson_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/localjson"
	"github.com/sigil-attestation/sigil/storage/storagetest"
)

func newBackend(t testing.TB) *localjson.Backend {
	t.Helper()
	b, err := localjson.New(filepath.Join(t.TempDir(), "json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newBackend(t) })
}

func BenchmarkLocalJson(b *testing.B) {
	storagetest.RunBenchmarks(b, func(b *testing.B) storage.Backend { return newBackend(b) })
}

func TestFileFormat(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	s, err := b.Namespace(ctx, storage.NamespaceRepository)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.Dir(), "repository")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("namespace file not created at %s: %v", p, err)
	}
	if string(raw) != "{}" {
		t.Errorf("new namespace file = %q; want {}", raw)
	}
	for k, v := range map[string]string{"default/test/secret": "shhhhhhh", "bin": "\xff\xef\x00", "any key: <>&": "", "k": "ab"} {
		if err := s.Set(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ = os.ReadFile(p)
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("file is not a JSON object of strings: %v\n%s", err, raw)
	}
	want := map[string]string{
		"default/test/secret": "c2hoaGhoaGg=", // URL-safe alphabet, padded
		"bin":                 "_-8A",
		"any key: <>&":        "",
		"k":                   "YWI=",
	}
	if len(got) != len(want) {
		t.Fatalf("file = %s; want %v", raw, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("file[%q] = %q; want %q", k, got[k], v)
		}
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v; want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(b.Dir())
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries; want only the namespace file", len(entries))
	}
}

// TestReadsTrusteeFile reads a namespace file in the format Trustee writes.
func TestReadsTrusteeFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"repository", "kbs"} {
		raw, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := localjson.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := b.Namespace(ctx, storage.NamespaceRepository)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"default/test/secret": "shhhhhhh",
		"one/two/three":       "0123456789abcdef",
		"bin/key":             "\xff\xef\x00",
		"rvps:///svn:tag":     `["1"]`,
	} {
		got, err := s.Get(ctx, k)
		if err != nil || string(got) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	k, _ := b.Namespace(ctx, storage.NamespaceKBS)
	if keys, err := k.List(ctx); err != nil || len(keys) != 0 {
		t.Errorf("List of {} = %q, %v", keys, err)
	}
}

func TestSeesExternalRewrite(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	s, _ := b.Namespace(ctx, storage.NamespaceKBS)
	if err := s.Set(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Another process replaces the file (as Trustee does: temp + rename).
	p := filepath.Join(b.Dir(), storage.NamespaceKBS)
	tmp := p + ".other"
	if err := os.WriteFile(tmp, []byte(`{"b":"Mg=="}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(a) after external rewrite = %v; want ErrNotFound", err)
	}
	if v, err := s.Get(ctx, "b"); err != nil || string(v) != "2" {
		t.Errorf("Get(b) = %q, %v; want 2", v, err)
	}
	if err := s.Set(ctx, "c", []byte("3")); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.List(ctx)
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"b", "c"}) {
		t.Errorf("List = %q; want [b c] (a write must merge with the rewritten file)", keys)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kbs"), []byte(`{"a":`), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := localjson.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Namespace(context.Background(), "kbs"); err == nil {
		t.Error("corrupt namespace file accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "repository"), []byte(`{"a":"!!!"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Namespace(context.Background(), "repository"); err == nil {
		t.Error("invalid base64 value accepted")
	}
}

func TestInvalidNamespaces(t *testing.T) {
	b := newBackend(t)
	for _, n := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		if _, err := b.Namespace(context.Background(), n); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Namespace(%q) = %v; want ErrInvalidKey", n, err)
		}
	}
}
