package redis_test

// These tests need a Redis (or Valkey) server. They use logical database 15
// of 127.0.0.1:6379 (override: SIGIL_REDIS_TEST_URL) and empty it with
// FLUSHDB before every test and in its cleanup: the conformance suite works
// on the fixed Trustee namespace names, so isolation by unique namespace is
// not possible, and a whole database is the unit Redis can wipe atomically.
// Do not point them at a database holding data.
//
// Concurrent runs of this package (two developers, -count, CI shards) would
// flush each other's data, so a run holds a lock key in the test database
// for its whole duration; the flush and the re-creation of the lock happen
// in one MULTI/EXEC, and other runs wait for the lock.
//
// Without a reachable server the tests are skipped, unless SIGIL_REQUIRE_DB
// is set (CI), in which case they fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/redis"
	"github.com/sigil-attestation/sigil/storage/storagetest"
)

const lockKey = "sigil-storage-redis-test-lock" // no ':' → in no namespace

var (
	testURL   = "redis://127.0.0.1:6379/15"
	admin     *goredis.Client // raw client on the test database
	testDB    int
	lockToken string
	skipWhy   string // non-empty: no server, tests skip
)

func TestMain(m *testing.M) {
	if u := os.Getenv("SIGIL_REDIS_TEST_URL"); u != "" {
		testURL = u
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	o, err := goredis.ParseURL(testURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "SIGIL_REDIS_TEST_URL:", err)
		return 2
	}
	testDB = o.DB
	admin = goredis.NewClient(o)
	defer admin.Close()
	ctx := context.Background()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = admin.Ping(pctx).Err()
	cancel()
	if err != nil {
		if os.Getenv("SIGIL_REQUIRE_DB") != "" {
			fmt.Fprintf(os.Stderr, "redis at %s unreachable and SIGIL_REQUIRE_DB is set: %v\n", o.Addr, err)
			return 1
		}
		skipWhy = fmt.Sprintf("redis at %s unreachable (%v); set SIGIL_REQUIRE_DB to fail instead", o.Addr, err)
		return m.Run()
	}

	lockToken = rand.Text()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok, err := admin.SetNX(ctx, lockKey, lockToken, 30*time.Second).Result()
		if err != nil {
			fmt.Fprintln(os.Stderr, "test lock:", err)
			return 1
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "test lock: another run holds", lockKey)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // keep the lock while tests run
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v, _ := admin.Get(ctx, lockKey).Result(); v == lockToken {
					admin.PExpire(ctx, lockKey, 30*time.Second)
				}
			}
		}
	})
	code := m.Run()
	close(stop)
	wg.Wait()
	if err := flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "final flush:", err)
	}
	if v, _ := admin.Get(ctx, lockKey).Result(); v == lockToken {
		admin.Del(ctx, lockKey)
	}
	return code
}

// flush empties the test database, keeping our lock.
func flush(ctx context.Context) error {
	_, err := admin.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.FlushDB(ctx)
		p.Set(ctx, lockKey, lockToken, 30*time.Second)
		return nil
	})
	return err
}

// fresh skips without a server and gives the test an empty database.
func fresh(t testing.TB) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if err := flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := flush(context.Background()); err != nil {
			t.Errorf("flush: %v", err)
		}
	})
}

// slack replaces the 2 s default timeouts in tests: on a shared, overloaded
// test machine the server or the client can stall for seconds (seen: an
// 8 MiB GET taking > 2 s at load 16 on 2 cores), which must not surface as a
// spurious ErrUnavailable. TestDefaults covers the default Options.
var slack = redis.Options{OpTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}

func newBackend(t testing.TB) *redis.Backend {
	t.Helper()
	fresh(t)
	b, err := redis.New(context.Background(), testURL, slack)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func store(t testing.TB, b *redis.Backend, ns string) *redis.Store {
	t.Helper()
	s, err := b.Namespace(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*redis.Store)
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newBackend(t) })
}

func BenchmarkRedis(b *testing.B) {
	storagetest.RunBenchmarks(b, func(b *testing.B) storage.Backend { return newBackend(b) })
}

// TestTrusteeLayout: keys Trustee wrote by hand are read, and what Sigil
// writes is where Trustee looks.
func TestTrusteeLayout(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	raw := []byte{0, 1, 2, 0xff, '\n', 'x'}
	admin.Set(ctx, "repository:a/b/c", raw, 0)
	admin.Set(ctx, "repository:default/key/testfile", "secret", 0)
	admin.Set(ctx, "kbs:resource-policy", "package policy", 0)
	admin.Set(ctx, "attestation_service_policy:default_cpu.rego", "package p", 0)
	admin.Set(ctx, "repository", "no colon: in no namespace", 0)
	admin.Set(ctx, "repositoryX:a", "other namespace", 0)
	admin.Set(ctx, "repository:bad key", "not a valid key", 0)

	repo := store(t, b, storage.NamespaceRepository)
	if got, err := repo.Get(ctx, "a/b/c"); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("Get(a/b/c) = %q, %v", got, err)
	}
	keys, err := repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"a/b/c", "default/key/testfile"}; !slices.Equal(keys, want) {
		t.Fatalf("List = %q; want %q", keys, want)
	}
	pol := store(t, b, storage.NamespaceASPolicy)
	if got, err := pol.Get(ctx, "default_cpu.rego"); err != nil || string(got) != "package p" {
		t.Fatalf("AS policy = %q, %v", got, err)
	}

	kbs := store(t, b, storage.NamespaceKBS)
	if err := kbs.Set(ctx, "resource-policy", []byte("new\x00policy")); err != nil {
		t.Fatal(err)
	}
	if got, err := admin.Get(ctx, "kbs:resource-policy").Result(); err != nil || got != "new\x00policy" {
		t.Fatalf("raw kbs:resource-policy = %q, %v", got, err)
	}
	if err := repo.Create(ctx, "x/y/z", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if typ := admin.Type(ctx, "repository:x/y/z").Val(); typ != "string" {
		t.Fatalf("type of repository:x/y/z = %q; want string", typ)
	}
	if ttl := admin.PTTL(ctx, "repository:x/y/z").Val(); ttl != -1 {
		t.Fatalf("plain write has TTL %v", ttl)
	}
}

// TestConcurrentWritersOneKey: many writers of one key and readers in
// parallel; every read sees one complete value, the last write wins.
func TestConcurrentWritersOneKey(t *testing.T) {
	ctx := context.Background()
	s := store(t, newBackend(t), storage.NamespaceSession)
	const writers, rounds, size = 8, 40, 4096
	value := func(w int) []byte { return bytes.Repeat([]byte{byte('A' + w)}, size) }
	var wg sync.WaitGroup
	errc := make(chan error, writers*2)
	for w := range writers {
		wg.Go(func() {
			for range rounds {
				if err := s.Set(ctx, "one/key", value(w)); err != nil {
					errc <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds {
				v, err := s.Get(ctx, "one/key")
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				if len(v) != size || !bytes.Equal(v, bytes.Repeat(v[:1], size)) {
					errc <- fmt.Errorf("torn read: %d bytes starting %q", len(v), v[:min(8, len(v))])
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
	// A final write by one writer is what everyone reads.
	if err := s.Set(ctx, "one/key", value(3)); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "one/key"); err != nil || !bytes.Equal(v, value(3)) {
		t.Fatalf("final value wrong (%d bytes, %v)", len(v), err)
	}
}

func TestLargeValue(t *testing.T) {
	ctx := context.Background()
	s := store(t, newBackend(t), storage.NamespaceRepository)
	big := make([]byte, 8<<20)
	_, _ = rand.Read(big)
	if err := s.Set(ctx, "big/set/value", big); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "big/created/value", big); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"big/set/value", "big/created/value"} {
		got, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, big) {
			t.Fatalf("Get(%s): %d bytes, not the %d written", k, len(got), len(big))
		}
	}
	if n := admin.StrLen(ctx, "repository:big/set/value").Val(); n != int64(len(big)) {
		t.Fatalf("STRLEN = %d", n)
	}
}

// TestKeyAlphabet uses every byte a key may contain, and checks that all
// others are refused before reaching the server.
func TestKeyAlphabet(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	s := store(t, b, storage.NamespaceRepository)
	var alpha strings.Builder
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' {
			alpha.WriteByte(byte(c))
		}
	}
	a := alpha.String()
	keys := []string{a, a + "/" + a + "/" + a, "-", "_", "...", ".hidden/..x/x..", "a//b", "/lead", "trail/", "-/_/x"}
	for i, k := range keys {
		if err := s.Set(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		if v, err := s.Get(ctx, k); err != nil || !bytes.Equal(v, []byte{byte(i)}) {
			t.Fatalf("Get(%q) = %q, %v", k, v, err)
		}
		if got := admin.Exists(ctx, "repository:"+k).Val(); got != 1 {
			t.Fatalf("raw key repository:%s missing", k)
		}
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(keys))) {
		t.Fatalf("List = %q; want %q", got, keys)
	}

	bad := []string{"", ".", "..", "a/./b", "a/../b", "../x", "a:b", "a b", "a*", "a?", "[a]", `a\b`, "é", "a\x00b", "a\nb", "ns:*"}
	for _, k := range bad {
		checks := map[string]error{}
		_, checks["Get"] = s.Get(ctx, k)
		checks["Set"] = s.Set(ctx, k, nil)
		checks["Create"] = s.Create(ctx, k, nil)
		checks["SetTTL"] = s.SetTTL(ctx, k, nil, time.Second)
		checks["CreateTTL"] = s.CreateTTL(ctx, k, nil, time.Second)
		checks["Delete"] = s.Delete(ctx, k)
		for op, err := range checks {
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v; want ErrInvalidKey", op, k, err)
			}
		}
	}
	if n := admin.DBSize(ctx).Val(); n != int64(len(keys))+1 { // + lock
		t.Fatalf("database holds %d keys; invalid keys reached the server?", n)
	}

	for _, ns := range []string{"", "a:b", "a*", "a/b", "a b", "ns?", "[x]"} {
		if _, err := b.Namespace(ctx, ns); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Namespace(%q) = %v; want ErrInvalidKey", ns, err)
		}
	}
	for _, ns := range []string{"kbs", "a.b", "A-b_c", ".", "0"} {
		if _, err := b.Namespace(ctx, ns); err != nil {
			t.Errorf("Namespace(%q): %v", ns, err)
		}
	}
}

func TestTTL(t *testing.T) {
	ctx := context.Background()
	s := store(t, newBackend(t), storage.NamespaceSession)
	var _ storage.Expirer = s
	if _, ok := storage.Store(s).(storage.Expirer); !ok {
		t.Fatal("store does not implement storage.Expirer")
	}
	// TTL bookkeeping is checked on long-lived keys, so a stalled test
	// machine cannot expire them early; the 200 ms keys only check expiry.
	if err := s.CreateTTL(ctx, "long/1", []byte("authed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTTL(ctx, "long/1", []byte("again"), time.Hour); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateTTL = %v; want ErrExists", err)
	}
	if err := s.SetTTL(ctx, "long/2", []byte("x"), 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "long/1"); err != nil || string(v) != "authed" {
		t.Fatalf("Get before expiry = %q, %v", v, err)
	}
	for k, max := range map[string]time.Duration{"long/1": time.Hour, "long/2": 90 * time.Minute} {
		if p := admin.PTTL(ctx, "kbs_protocol_session:"+k).Val(); p <= max-time.Minute || p > max {
			t.Fatalf("PTTL(%s) = %v; want about %v", k, p, max)
		}
	}

	const ttl = 200 * time.Millisecond
	if err := s.CreateTTL(ctx, "sess/1", []byte("authed"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTTL(ctx, "sess/2", []byte("x"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTTL(ctx, "sess/3", []byte("x"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "sess/3", []byte("kept")); err != nil { // Set drops the TTL
		t.Fatal(err)
	}
	if p := admin.PTTL(ctx, "kbs_protocol_session:sess/3").Val(); p != -1 {
		t.Fatalf("PTTL after Set = %v; want -1 (no expiry)", p)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	for _, k := range []string{"sess/1", "sess/2"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get(%s) after expiry = %v; want ErrNotFound", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Delete(%s) after expiry = %v; want ErrNotFound", k, err)
		}
	}
	if v, err := s.Get(ctx, "sess/3"); err != nil || string(v) != "kept" {
		t.Fatalf("Set did not clear the TTL: %q, %v", v, err)
	}
	if keys, err := s.List(ctx); err != nil || !slices.Equal(slices.Sorted(slices.Values(keys)), []string{"long/1", "long/2", "sess/3"}) {
		t.Fatalf("List after expiry = %q, %v", keys, err)
	}
	if err := s.CreateTTL(ctx, "sess/1", []byte("new"), time.Hour); err != nil {
		t.Fatalf("CreateTTL after expiry: %v", err)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		if err := s.SetTTL(ctx, "sess/4", []byte("x"), d); err == nil {
			t.Errorf("SetTTL with ttl %v accepted", d)
		}
		if err := s.CreateTTL(ctx, "sess/4", []byte("x"), d); err == nil {
			t.Errorf("CreateTTL with ttl %v accepted", d)
		}
	}
	// Sub-millisecond TTLs round up instead of becoming "no expiry".
	if err := s.SetTTL(ctx, "sess/5", []byte("x"), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if p := admin.PTTL(ctx, "kbs_protocol_session:sess/5").Val(); p == -1 {
		t.Fatal("sub-millisecond TTL stored without expiry")
	}
}

// TestListPagination: more keys than one SCAN call returns.
func TestListPagination(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	s := store(t, b, storage.NamespaceReferenceValue)
	const n = 2500
	want := make([]string, 0, n)
	_, err := admin.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range n {
			k := fmt.Sprintf("rv/%04d", i)
			want = append(want, k)
			p.Set(ctx, "reference_value:"+k, i, 0)
			p.Set(ctx, "repository:"+k, i, 0) // other namespace, same keys
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("List returned %d keys; want %d", len(got), n)
	}
	// The walk really pages: one SCAN COUNT 1000 does not cover the space.
	if _, cursor, err := admin.Scan(ctx, 0, "reference_value:*", 1000).Result(); err != nil || cursor == 0 {
		t.Fatalf("one SCAN covered everything (cursor %d, %v); test does not exercise paging", cursor, err)
	}
	if err := s.Delete(ctx, "rv/0007"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List(ctx); len(got) != n-1 {
		t.Fatalf("List after Delete has %d keys; want %d", len(got), n-1)
	}
}

// unreachable returns a backend whose server refuses connections.
func unreachable(t *testing.T, url string, opts redis.Options) *redis.Backend {
	t.Helper()
	opts.NoPing = true
	b, err := redis.New(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func allOps(ctx context.Context, b *redis.Backend) map[string]error {
	st, err := b.Namespace(ctx, storage.NamespaceRepository)
	if err != nil {
		return map[string]error{"Namespace": err}
	}
	s := st.(*redis.Store)
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "a/b/c")
	checks["Set"] = s.Set(ctx, "a/b/c", []byte("v"))
	checks["Create"] = s.Create(ctx, "a/b/c", []byte("v"))
	checks["SetTTL"] = s.SetTTL(ctx, "a/b/c", []byte("v"), time.Second)
	checks["CreateTTL"] = s.CreateTTL(ctx, "a/b/c", []byte("v"), time.Second)
	checks["Delete"] = s.Delete(ctx, "a/b/c")
	_, checks["List"] = s.List(ctx)
	checks["Ping"] = b.Ping(ctx)
	return checks
}

func TestUnavailableRefused(t *testing.T) {
	ctx := context.Background()
	const url = "redis://127.0.0.1:1"
	if _, err := redis.New(ctx, url, redis.Options{OpTimeout: 300 * time.Millisecond}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("New(unreachable) = %v; want ErrUnavailable", err)
	}
	b := unreachable(t, url, redis.Options{OpTimeout: 300 * time.Millisecond})
	start := time.Now()
	for op, err := range allOps(ctx, b) {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s = %v; want ErrUnavailable", op, err)
		}
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists) {
			t.Errorf("%s = %v; must not look like a definite answer", op, err)
		}
	}
	if d := time.Since(start); d > 8*300*time.Millisecond+time.Second {
		t.Errorf("8 operations took %v; OpTimeout not honoured", d)
	}
}

// TestUnavailableSilent: a server that accepts connections and never
// answers yields ErrUnavailable within the timeouts.
func TestUnavailableSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, read nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ctx := context.Background()
	b := unreachable(t, "redis://"+ln.Addr().String(), redis.Options{OpTimeout: 250 * time.Millisecond})
	start := time.Now()
	for op, err := range allOps(ctx, b) {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s = %v; want ErrUnavailable", op, err)
		}
	}
	if d := time.Since(start); d > 8*250*time.Millisecond+2*time.Second {
		t.Errorf("8 operations took %v; OpTimeout not honoured", d)
	}

	// The caller's deadline running out counts as an outage, and says so.
	dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer dcancel()
	st0, _ := b.Namespace(ctx, storage.NamespaceRepository)
	if _, err := st0.Get(dctx, "k"); !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get past the caller's deadline = %v; want ErrUnavailable and DeadlineExceeded", err)
	}

	// The caller cancelling is reported as cancellation, not as an outage.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	st, _ := b.Namespace(ctx, storage.NamespaceRepository)
	if _, err := st.Get(cctx, "k"); !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get cancelled mid-flight = %v; want context.Canceled only", err)
	}
}

func TestPingAndClose(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s := store(t, b, storage.NamespaceKBS)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	err := s.Set(ctx, "k", []byte("v"))
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Set after Close = %v; want a non-ErrUnavailable error", err)
	}
}

func TestNewURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{
		"redis://user:s3cret@[::1", // unparsable
		"http://user:s3cret@127.0.0.1:6379",
		"redis://user:s3cret@127.0.0.1:6379/notanumber",
	} {
		_, err := redis.New(ctx, u, redis.Options{NoPing: true})
		if err == nil {
			t.Errorf("New(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	// The logical database comes from the URL path.
	b := newBackend(t)
	if err := store(t, b, "kbs").Set(ctx, "in-db15", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if admin.Exists(ctx, "kbs:in-db15").Val() != 1 {
		t.Fatal("write did not land in the URL's database")
	}
}

func TestResolveURL(t *testing.T) {
	t.Setenv(redis.EnvURL, "")
	if got := redis.ResolveURL(""); got != "redis://127.0.0.1:6379" {
		t.Fatalf("default = %q", got)
	}
	if got := redis.ResolveURL("redis://h:1"); got != "redis://h:1" {
		t.Fatalf("configured = %q", got)
	}
	t.Setenv(redis.EnvURL, "redis://env:2/3")
	if got := redis.ResolveURL("redis://h:1"); got != "redis://env:2/3" {
		t.Fatalf("REDIS_URL must override: %q", got)
	}
}

// TestServerDropsConnections: after the server closed the pooled
// connections (idle timeout, restart), every operation, including the
// never-replayed Create and Delete, succeeds on a fresh connection.
func TestServerDropsConnections(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	s := store(t, b, storage.NamespaceKBS)
	var wg sync.WaitGroup
	for i := range 8 { // fill the pool with several connections
		wg.Go(func() { _ = s.Set(ctx, fmt.Sprintf("warm/%d", i), []byte("x")) })
	}
	wg.Wait()
	killed := 0
	for line := range strings.SplitSeq(admin.ClientList(ctx).Val(), "\n") {
		if !strings.Contains(line, " name=sigil ") || !strings.Contains(line, fmt.Sprintf(" db=%d ", testDB)) {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		if err := admin.Do(ctx, "client", "kill", "id", id).Err(); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	if killed == 0 {
		t.Fatal("found no pooled connection to kill")
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Create(ctx, "after/kill", []byte("v")); err != nil {
		t.Fatalf("Create after the server dropped %d connections: %v", killed, err)
	}
	if err := s.Delete(ctx, "warm/0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if v, err := s.Get(ctx, "after/kill"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

// TestDefaults: zero Options work (2 s timeouts, 2 retries, go-redis pool).
func TestDefaults(t *testing.T) {
	fresh(t)
	ctx := context.Background()
	b, err := redis.New(ctx, testURL, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := store(t, b, storage.NamespaceKBS)
	if err := s.Create(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}
