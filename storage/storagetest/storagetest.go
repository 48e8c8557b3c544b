// Package storagetest is the conformance suite every storage.Backend must
// pass. A backend's own tests call Run (and optionally RunBenchmarks) with a
// constructor that returns a fresh, empty backend.
//
// The suite checks the semantics documented on storage.Store: Get/Set/Create/
// Delete/List behaviour, the ErrNotFound/ErrExists sentinels (through
// errors.Is), overwrite, binary and empty values, copy semantics of values,
// namespace isolation, context cancellation, and concurrent use (run it with
// -race), including racing Create calls of which exactly one must win.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sigil-attestation/sigil/storage"
)

// Keys used by the suite. They are valid for every backend, including the
// restricted LocalFs character set ([A-Za-z0-9._/-]).
var sampleKeys = []string{
	"resource-policy",
	"default/key/testfile",
	"default_cpu.rego",
	"a.b-c_d",
	"one/two/three",
	"UPPER/lower/123",
}

// Run runs the conformance suite. newBackend must return a new, empty backend
// for each call; the suite closes it when the subtest ends.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	t.Helper()
	open := func(t *testing.T) (storage.Backend, context.Context) {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b, context.Background()
	}
	ns := func(t *testing.T, b storage.Backend, ctx context.Context, name string) storage.Store {
		t.Helper()
		s, err := b.Namespace(ctx, name)
		if err != nil {
			t.Fatalf("Namespace(%q): %v", name, err)
		}
		return s
	}

	t.Run("GetMissing", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		if v, err := s.Get(ctx, "default/no/such"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get missing = %q, %v; want ErrNotFound", v, err)
		}
	})

	t.Run("SetGetOverwrite", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		for i, k := range sampleKeys {
			want := fmt.Appendf(nil, "value-%d", i)
			mustSet(t, s, k, want)
			mustGet(t, s, k, want)
		}
		mustSet(t, s, sampleKeys[0], []byte("second"))
		mustGet(t, s, sampleKeys[0], []byte("second"))
		mustSet(t, s, sampleKeys[0], []byte("x"))
		mustGet(t, s, sampleKeys[0], []byte("x")) // shorter value must not keep old bytes
	})

	t.Run("Create", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceKBS)
		if err := s.Create(ctx, "k", []byte("first")); err != nil {
			t.Fatalf("Create new: %v", err)
		}
		if err := s.Create(ctx, "k", []byte("second")); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("Create existing = %v; want ErrExists", err)
		}
		mustGet(t, s, "k", []byte("first"))
		mustSet(t, s, "k", []byte("third"))
		mustGet(t, s, "k", []byte("third"))
		mustDelete(t, s, "k")
		if err := s.Create(ctx, "k", []byte("fourth")); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		mustGet(t, s, "k", []byte("fourth"))
	})

	t.Run("Delete", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceKBS)
		if err := s.Delete(ctx, "absent"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Delete missing = %v; want ErrNotFound", err)
		}
		mustSet(t, s, "a/b/c", []byte("v"))
		mustDelete(t, s, "a/b/c")
		if _, err := s.Get(ctx, "a/b/c"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get after Delete = %v; want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "a/b/c"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second Delete = %v; want ErrNotFound", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		mustList(t, s, nil)
		for _, k := range sampleKeys {
			mustSet(t, s, k, []byte(k))
		}
		mustSet(t, s, sampleKeys[0], []byte("overwritten")) // no duplicate entry
		mustList(t, s, sampleKeys)
		mustDelete(t, s, sampleKeys[1])
		mustList(t, s, slices.Delete(slices.Clone(sampleKeys), 1, 2))
	})

	t.Run("BinaryValues", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		values := map[string][]byte{
			"bin/all/bytes": all,
			"bin/nul/only":  {0},
			"bin/json/like": []byte(`{"a":"\u0000"}` + "\n\r\t\"\\"),
			"bin/large/v":   bytes.Repeat([]byte{0xff, 0x00, 0x7f}, 70000),
		}
		for k, v := range values {
			mustSet(t, s, k, v)
		}
		for k, v := range values {
			mustGet(t, s, k, v)
		}
	})

	t.Run("EmptyValue", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		mustSet(t, s, "empty/set/value", []byte{})
		mustSet(t, s, "nil/set/value", nil)
		if err := s.Create(ctx, "empty/created/value", nil); err != nil {
			t.Fatalf("Create empty: %v", err)
		}
		for _, k := range []string{"empty/set/value", "nil/set/value", "empty/created/value"} {
			v, err := s.Get(ctx, k)
			if err != nil {
				t.Fatalf("Get(%q) of an empty value: %v (an empty value must exist)", k, err)
			}
			if len(v) != 0 {
				t.Fatalf("Get(%q) = %q; want empty", k, v)
			}
		}
		if err := s.Create(ctx, "empty/set/value", []byte("x")); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("Create over an empty value = %v; want ErrExists", err)
		}
		mustList(t, s, []string{"empty/set/value", "nil/set/value", "empty/created/value"})
	})

	t.Run("ValueCopies", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		in := []byte("original")
		mustSet(t, s, "copy", in)
		in[0] = 'X'
		mustGet(t, s, "copy", []byte("original"))
		out, err := s.Get(ctx, "copy")
		if err != nil {
			t.Fatal(err)
		}
		out[0] = 'Y'
		mustGet(t, s, "copy", []byte("original"))
		in2 := []byte("created")
		if err := s.Create(ctx, "copy2", in2); err != nil {
			t.Fatal(err)
		}
		in2[0] = 'Z'
		mustGet(t, s, "copy2", []byte("created"))
	})

	t.Run("NamespaceIsolation", func(t *testing.T) {
		b, ctx := open(t)
		a := ns(t, b, ctx, storage.NamespaceRepository)
		c := ns(t, b, ctx, storage.NamespaceKBS)
		mustSet(t, a, "shared/key/name", []byte("in-repository"))
		if _, err := c.Get(ctx, "shared/key/name"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("key leaked across namespaces: %v", err)
		}
		mustSet(t, c, "shared/key/name", []byte("in-kbs"))
		mustGet(t, a, "shared/key/name", []byte("in-repository"))
		mustGet(t, c, "shared/key/name", []byte("in-kbs"))
		mustSet(t, c, "only-kbs", []byte("x"))
		mustList(t, a, []string{"shared/key/name"})
		mustList(t, c, []string{"shared/key/name", "only-kbs"})
		mustDelete(t, a, "shared/key/name")
		mustGet(t, c, "shared/key/name", []byte("in-kbs"))

		// Opening a namespace again yields the same data.
		again := ns(t, b, ctx, storage.NamespaceKBS)
		mustGet(t, again, "only-kbs", []byte("x"))
		mustSet(t, again, "via-second-handle", []byte("y"))
		mustGet(t, c, "via-second-handle", []byte("y"))
	})

	t.Run("AllNamespaces", func(t *testing.T) {
		b, ctx := open(t)
		names := []string{
			storage.NamespaceKBS, storage.NamespaceRepository, storage.NamespaceSession,
			storage.NamespaceASPolicy, storage.NamespaceReferenceValue, "provisioner",
		}
		for _, n := range names {
			mustSet(t, ns(t, b, ctx, n), "k", []byte(n))
		}
		for _, n := range names {
			s := ns(t, b, ctx, n)
			mustGet(t, s, "k", []byte(n))
			mustList(t, s, []string{"k"})
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceRepository)
		mustSet(t, s, "k", []byte("v"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		checks := map[string]error{}
		_, checks["Get"] = s.Get(cctx, "k")
		checks["Set"] = s.Set(cctx, "k", []byte("w"))
		checks["Create"] = s.Create(cctx, "new", []byte("w"))
		checks["Delete"] = s.Delete(cctx, "k")
		_, checks["List"] = s.List(cctx)
		for op, err := range checks {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context = %v; want context.Canceled", op, err)
			}
		}
		mustGet(t, s, "k", []byte("v"))
		if _, err := s.Get(ctx, "new"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Create with a canceled context stored a value: %v", err)
		}
	})

	t.Run("ConcurrentSetGet", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceSession)
		const workers, rounds = 8, 25
		var wg sync.WaitGroup
		errc := make(chan error, workers*rounds*4)
		for w := range workers {
			wg.Go(func() {
				own := fmt.Sprintf("worker-%d", w)
				for r := range rounds {
					v := fmt.Appendf(nil, "%d-%d", w, r)
					if err := s.Set(ctx, own, v); err != nil {
						errc <- fmt.Errorf("Set(%s): %w", own, err)
						return
					}
					got, err := s.Get(ctx, own)
					if err != nil || !bytes.Equal(got, v) {
						errc <- fmt.Errorf("Get(%s) = %q, %v; want %q", own, got, err, v)
						return
					}
					// A key shared by all workers: every read must see one
					// complete value written by someone (or nothing yet).
					if err := s.Set(ctx, "shared", bytes.Repeat([]byte{byte('a' + w)}, 64)); err != nil {
						errc <- fmt.Errorf("Set(shared): %w", err)
						return
					}
					sv, err := s.Get(ctx, "shared")
					if err != nil {
						errc <- fmt.Errorf("Get(shared): %w", err)
						return
					}
					if len(sv) != 64 || !bytes.Equal(sv, bytes.Repeat(sv[:1], 64)) {
						errc <- fmt.Errorf("Get(shared) returned a torn value %q", sv)
						return
					}
					if _, err := s.List(ctx); err != nil {
						errc <- fmt.Errorf("store.List: %w", err)
						return
					}
					ck := fmt.Sprintf("create-%d-%d", w, r)
					if err := s.Create(ctx, ck, v); err != nil {
						errc <- fmt.Errorf("Create(%s): %w", ck, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		keys, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := workers + 1 + workers*rounds; len(keys) != want {
			t.Fatalf("List after concurrent writes has %d keys; want %d", len(keys), want)
		}
		for w := range workers {
			mustGet(t, s, fmt.Sprintf("worker-%d", w), fmt.Appendf(nil, "%d-%d", w, rounds-1))
		}
	})

	t.Run("CreateRace", func(t *testing.T) {
		b, ctx := open(t)
		s := ns(t, b, ctx, storage.NamespaceSession)
		const racers = 16
		for round := range 5 {
			key := fmt.Sprintf("race/%d", round)
			var wg sync.WaitGroup
			results := make([]error, racers)
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					results[i] = s.Create(ctx, key, fmt.Appendf(nil, "winner-%d", i))
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range results {
				switch {
				case err == nil:
					if winner >= 0 {
						t.Fatalf("round %d: both racer %d and %d won Create", round, winner, i)
					}
					winner = i
				case !errors.Is(err, storage.ErrExists):
					t.Fatalf("round %d: racer %d: %v; want nil or ErrExists", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no racer won Create", round)
			}
			mustGet(t, s, key, fmt.Appendf(nil, "winner-%d", winner))
		}
	})
}

// RunBenchmarks runs Get and Set benchmarks (sequential and parallel) against
// backends made by newBackend.
func RunBenchmarks(b *testing.B, newBackend func(b *testing.B) storage.Backend) {
	value := bytes.Repeat([]byte("v"), 256)
	setup := func(b *testing.B) storage.Store {
		b.Helper()
		be := newBackend(b)
		b.Cleanup(func() { _ = be.Close() })
		s, err := be.Namespace(context.Background(), storage.NamespaceRepository)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 64 {
			if err := s.Set(context.Background(), fmt.Sprintf("default/bench/%d", i), value); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	b.Run("Get", func(b *testing.B) {
		s := setup(b)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, fmt.Sprintf("default/bench/%d", i%64)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Set", func(b *testing.B) {
		s := setup(b)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if err := s.Set(ctx, fmt.Sprintf("default/bench/%d", i%64), value); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s := setup(b)
		ctx := context.Background()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, fmt.Sprintf("default/bench/%d", i%64)); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

func mustSet(t *testing.T, s storage.Store, key string, value []byte) {
	t.Helper()
	if err := s.Set(context.Background(), key, value); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s storage.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %.64q (len %d); want %.64q (len %d)", key, got, len(got), want, len(want))
	}
}

func mustDelete(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if err := s.Delete(context.Background(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func mustList(t *testing.T, s storage.Store, want []string) {
	t.Helper()
	got, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got = slices.Sorted(slices.Values(got))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q; want %q", got, want)
	}
}
