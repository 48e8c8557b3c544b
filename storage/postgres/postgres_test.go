package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/storagetest"
)

// The tests need a PostgreSQL server. SIGIL_TEST_POSTGRES_URL names it
// (default: database "test" on 127.0.0.1:5432, user postgres, trust auth).
// Every backend gets its own schema, dropped when the test ends. Without a
// reachable server the tests are skipped, unless SIGIL_REQUIRE_DB is set
// (as in CI), in which case they fail.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	adminOnce sync.Once
	adminErr  error
)

func adminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("SIGIL_TEST_POSTGRES_URL")
	if u == "" {
		u = defaultTestURL
	}
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			adminErr = err
			return
		}
		adminErr = c.Ping(ctx)
		c.Close(ctx)
	})
	if adminErr != nil {
		if os.Getenv("SIGIL_REQUIRE_DB") != "" {
			tb.Fatalf("PostgreSQL at %s required (SIGIL_REQUIRE_DB is set) but unusable: %v", u, adminErr)
		}
		tb.Skipf("PostgreSQL at %s unusable (set SIGIL_REQUIRE_DB to make this fatal): %v", u, adminErr)
	}
	return u
}

// admin runs sql on a fresh connection to the test database.
func admin(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, adminURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func adminQueryRow(tb testing.TB, dst any, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, adminURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testSchema creates an empty schema and returns it with a connection string
// whose search_path is that schema. params are further URL parameters.
func testSchema(tb testing.TB, params map[string]string) (schema, connString string) {
	tb.Helper()
	base := adminURL(tb)
	schema = "sigil_test_" + randomHex(6)
	admin(tb, "CREATE SCHEMA "+schema)
	tb.Cleanup(func() { admin(tb, "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return schema, u.String()
}

func newTestBackend(tb testing.TB, opts Options) *Backend {
	tb.Helper()
	_, cs := testSchema(tb, nil)
	b, err := New(context.Background(), cs, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func openNS(tb testing.TB, b storage.Backend, name string) storage.Store {
	tb.Helper()
	s, err := b.Namespace(context.Background(), name)
	if err != nil {
		tb.Fatalf("Namespace(%q): %v", name, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return newTestBackend(t, Options{}) })
}

func BenchmarkPostgres(b *testing.B) {
	storagetest.RunBenchmarks(b, func(b *testing.B) storage.Backend { return newTestBackend(b, Options{}) })
}

// BenchmarkOps covers the operations RunBenchmarks does not.
func BenchmarkOps(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 256)
	b.Run("CreateDelete", func(b *testing.B) {
		be := newTestBackend(b, Options{})
		defer be.Close()
		s := openNS(b, be, storage.NamespaceSession)
		for b.Loop() {
			if err := s.Create(ctx, "bench/create", value); err != nil {
				b.Fatal(err)
			}
			if err := s.Delete(ctx, "bench/create"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateExisting", func(b *testing.B) {
		be := newTestBackend(b, Options{})
		defer be.Close()
		s := openNS(b, be, storage.NamespaceSession)
		if err := s.Create(ctx, "bench/create", value); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Create(ctx, "bench/create", value); !errors.Is(err, storage.ErrExists) {
				b.Fatal(err)
			}
		}
	})
	b.Run("SetVolatile", func(b *testing.B) {
		be := newTestBackend(b, Options{})
		defer be.Close()
		s, err := be.VolatileNamespace(ctx, storage.NamespaceSession)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Set(ctx, "bench/volatile", value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("List64", func(b *testing.B) {
		be := newTestBackend(b, Options{})
		defer be.Close()
		s := openNS(b, be, storage.NamespaceRepository)
		for i := range 64 {
			if err := s.Set(ctx, fmt.Sprintf("default/bench/%d", i), value); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			if keys, err := s.List(ctx); err != nil || len(keys) != 64 {
				b.Fatal(len(keys), err)
			}
		}
	})
}

// TestTrusteeTable reads and writes a table laid out as Trustee's Helm init
// SQL creates it (value without NOT NULL), without changing it.
func TestTrusteeTable(t *testing.T) {
	schema, cs := testSchema(t, nil)
	admin(t, "CREATE TABLE "+schema+".repository (key TEXT PRIMARY KEY, value BYTEA)")
	admin(t, "INSERT INTO "+schema+".repository (key, value) VALUES "+
		"('default/key/testfile', '\\x736563726574'), ('default/nul/value', NULL), "+
		"('default/bin/value', '\\x00ff0a'), ('not a valid key', 'x')")
	b, err := New(context.Background(), cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	s := openNS(t, b, storage.NamespaceRepository)

	for k, want := range map[string][]byte{
		"default/key/testfile": []byte("secret"),
		"default/nul/value":    {},
		"default/bin/value":    {0x00, 0xff, 0x0a},
	} {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Get(%q) = %q, %v; want %q", k, got, err, want)
		}
	}
	keys, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{"default/bin/value", "default/key/testfile", "default/nul/value"}; !slices.Equal(keys, want) {
		t.Errorf("List = %q; want %q (the invalid key skipped)", keys, want)
	}
	if err := s.Create(ctx, "default/key/testfile", []byte("other")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Create over Trustee's row = %v; want ErrExists", err)
	}
	if err := s.Set(ctx, "default/key/new", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "default/nul/value", []byte("now set")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "default/bin/value"); err != nil {
		t.Fatal(err)
	}

	// What we wrote is plain rows Trustee reads back.
	var hexNew string
	adminQueryRow(t, &hexNew, "SELECT encode(value, 'hex') FROM "+schema+".repository WHERE key = 'default/key/new'")
	if hexNew != "010203" {
		t.Errorf("row written by Set = %s; want 010203", hexNew)
	}
	var n int
	adminQueryRow(t, &n, "SELECT count(*) FROM "+schema+".repository")
	if n != 4 {
		t.Errorf("table has %d rows; want 4", n)
	}
	// The table was used as is: value still nullable, no column added.
	var nullable string
	adminQueryRow(t, &nullable, "SELECT is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'repository' AND column_name = 'value'", schema)
	if nullable != "YES" {
		t.Errorf("value column is_nullable = %s; the existing table was altered", nullable)
	}
	adminQueryRow(t, &n, "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'repository'", schema)
	if n != 2 {
		t.Errorf("table has %d columns; want 2", n)
	}
}

// TestCreatedTableLayout checks the table this backend creates.
func TestCreatedTableLayout(t *testing.T) {
	schema, cs := testSchema(t, nil)
	b, err := New(context.Background(), cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	openNS(t, b, storage.NamespaceKBS)
	openNS(t, b, storage.NamespaceKBS) // idempotent
	var layout string
	adminQueryRow(t, &layout, `SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'kbs'`, schema)
	if want := "key text NO, value bytea NO"; layout != want {
		t.Errorf("layout = %q; want %q", layout, want)
	}
	var pk string
	adminQueryRow(t, &pk, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary`, schema+".kbs")
	if pk != "key" {
		t.Errorf("primary key column = %q; want key", pk)
	}
}

func TestIncompatibleTable(t *testing.T) {
	schema, cs := testSchema(t, nil)
	admin(t, "CREATE TABLE "+schema+".kbs (key TEXT PRIMARY KEY, value TEXT)")
	admin(t, "CREATE TABLE "+schema+".repository (name TEXT PRIMARY KEY, data BYTEA)")
	b, err := New(context.Background(), cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, ns := range []string{storage.NamespaceKBS, storage.NamespaceRepository} {
		_, err := b.Namespace(context.Background(), ns)
		if err == nil || errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Namespace(%q) on an incompatible table = %v; want a layout error", ns, err)
		}
	}
}

func TestVolatileNamespace(t *testing.T) {
	schema, cs := testSchema(t, nil)
	b, err := New(context.Background(), cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	s, err := b.VolatileNamespace(ctx, storage.NamespaceSession)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "sess", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var p string
	adminQueryRow(t, &p, "SELECT relpersistence::text FROM pg_class WHERE oid = $1::regclass", schema+"."+storage.NamespaceSession)
	if p != "u" {
		t.Errorf("relpersistence = %q; want u (unlogged)", p)
	}
	// The durable opener sees the same table.
	if v, err := openNS(t, b, storage.NamespaceSession).Get(ctx, "sess"); err != nil || string(v) != "x" {
		t.Errorf("Get via Namespace = %q, %v", v, err)
	}
	if _, err := b.VolatileNamespace(ctx, "Bad"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("VolatileNamespace(Bad) = %v; want ErrInvalidKey", err)
	}
}

func TestNamespaceValidation(t *testing.T) {
	b := newTestBackend(t, Options{})
	defer b.Close()
	ctx := context.Background()
	valid := []string{
		storage.NamespaceKBS, storage.NamespaceRepository, storage.NamespaceSession,
		storage.NamespaceASPolicy, storage.NamespaceReferenceValue, "provisioner",
		"a", "0", "_", strings.Repeat("n", 63),
	}
	for _, name := range valid {
		if _, err := b.Namespace(ctx, name); err != nil {
			t.Errorf("Namespace(%q) = %v", name, err)
		}
	}
	invalid := []string{
		"", "KBS", "Repository", "a-b", "a.b", "a b", "a/b", "é", "a\x00b",
		`kbs"; DROP TABLE kbs; --`, `kbs"`, "kbs;", strings.Repeat("n", 64),
	}
	for _, name := range invalid {
		if _, err := b.Namespace(ctx, name); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Namespace(%q) = %v; want ErrInvalidKey", name, err)
		}
	}
	// The injection attempt did not touch the kbs table.
	if _, err := openNS(t, b, storage.NamespaceKBS).List(ctx); err != nil {
		t.Errorf("kbs table after invalid names: %v", err)
	}
}

// TestKeyCharset stores keys made of every byte Trustee's resource paths
// allow and rejects every other key before touching the database.
func TestKeyCharset(t *testing.T) {
	b := newTestBackend(t, Options{})
	defer b.Close()
	ctx := context.Background()
	s := openNS(t, b, storage.NamespaceRepository)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
	keys := []string{
		alphabet + "/" + alphabet + "/" + alphabet,
		"-", "_", "...", ".hidden", "a..b", "/leading", "trailing/", "a//b", "/",
	}
	for i := range len(alphabet) {
		if c := alphabet[i]; c != '.' {
			keys = append(keys, "single/"+string(c))
		}
	}
	for i, k := range keys {
		if err := s.Set(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		if v, err := s.Get(ctx, k); err != nil || !bytes.Equal(v, []byte{byte(i)}) {
			t.Errorf("Get(%q) = %v, %v", k, v, err)
		}
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(keys))) {
		t.Errorf("List = %q; want %q", got, keys)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}

	invalid := []string{
		"", ".", "..", "a/./b", "a/../b", "../etc/passwd", "a/..", "./a",
		"a b", "a:b", "rvps:///x:tag", "a\x00b", "a\nb", "a'b", `a"b`, "a;b", "a%b", "a\\b",
		"a*b", "a?b", "ü", "a\xffb", "key\t",
	}
	for _, k := range invalid {
		if _, err := s.Get(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := s.Set(ctx, k, []byte("x")); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Set(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := s.Create(ctx, k, []byte("x")); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Create(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", k, err)
		}
	}
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Errorf("List after invalid writes = %q, %v; want empty", got, err)
	}
}

func TestLargeValue(t *testing.T) {
	b := newTestBackend(t, Options{})
	defer b.Close()
	ctx := context.Background()
	s := openNS(t, b, storage.NamespaceRepository)
	big := make([]byte, 8<<20)
	rand.Read(big)
	if err := s.Set(ctx, "default/big/set", big); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "default/big/create", big[1:]); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string][]byte{"default/big/set": big, "default/big/create": big[1:]} {
		got, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get(%q): %d bytes, differ from the %d written", k, len(got), len(want))
		}
	}
	// Overwrite with a small value: nothing of the large one remains.
	if err := s.Set(ctx, "default/big/set", []byte("s")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "default/big/set"); err != nil || string(got) != "s" {
		t.Fatalf("Get after shrink = %d bytes, %v", len(got), err)
	}
}

// TestConcurrentWritersOneKey: writers overwrite one key with large values
// while readers read it; every read and the final value are one complete
// written value, never a mix.
func TestConcurrentWritersOneKey(t *testing.T) {
	b := newTestBackend(t, Options{})
	defer b.Close()
	ctx := context.Background()
	s := openNS(t, b, storage.NamespaceRepository)
	const writers, rounds, size = 4, 10, 256 << 10
	value := func(id byte) []byte { return bytes.Repeat([]byte{id}, size) }
	check := func(v []byte) error {
		if len(v) != size || !bytes.Equal(v, value(v[0])) || v[0] == 0 || v[0] > writers*rounds {
			return fmt.Errorf("torn or foreign value (len %d, first byte %d)", len(v), v[0])
		}
		return nil
	}
	if err := s.Set(ctx, "shared", value(1)); err != nil {
		t.Fatal(err)
	}
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	errc := make(chan error, 64)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				if err := s.Set(ctx, "shared", value(byte(1+w*rounds+r))); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				v, err := s.Get(ctx, "shared")
				if err == nil {
					err = check(v)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	v, err := s.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := check(v); err != nil {
		t.Fatalf("final value: %v", err)
	}
	if last := v[0] - 1; int(last)%rounds != rounds-1 {
		t.Errorf("final value %d is not some writer's last write", v[0])
	}
}

func TestUnreachable(t *testing.T) {
	const dead = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable"
	ctx := context.Background()
	start := time.Now()
	_, err := New(ctx, dead, Options{OpTimeout: time.Second, ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("New on a dead port = %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("New took %v; want about OpTimeout (1 s) at most", d)
	}

	b, err := New(ctx, dead, Options{OpTimeout: time.Second, LazyConnect: true})
	if err != nil {
		t.Fatalf("New lazy: %v", err)
	}
	defer b.Close()
	if err := b.Ping(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping = %v; want ErrUnavailable", err)
	}
	if _, err := b.Namespace(ctx, storage.NamespaceKBS); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Namespace = %v; want ErrUnavailable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Ping(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping with a canceled context = %v; want context.Canceled only", err)
	}
}

// TestNotUnavailable: configuration errors are not reported as outages.
func TestNotUnavailable(t *testing.T) {
	u, err := url.Parse(adminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/sigil_no_such_database_" + randomHex(4)
	_, err = New(context.Background(), u.String(), Options{})
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("New with a missing database = %v; want a non-ErrUnavailable error", err)
	}
	if _, err := New(context.Background(), "postgres://[bad", Options{}); err == nil {
		t.Error("New with a malformed URL succeeded")
	}
	if _, err := New(context.Background(), defaultTestURL, Options{MaxConns: -1}); err == nil {
		t.Error("New with MaxConns -1 succeeded")
	}
}

// proxy forwards TCP connections to the database; stop simulates an outage
// (listener and all connections closed), start on the same address ends it.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T) *proxy {
	u, err := url.Parse(adminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, target: u.Host, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after stop
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // stopped meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close(); c.Close() }()
			go func() { io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) connString(t *testing.T) string {
	_, cs := testSchema(t, nil)
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

// TestOutage: while the database is unreachable every operation fails with
// ErrUnavailable within OpTimeout; a caller's cancellation stays a
// cancellation; a short outage is ridden out by retries; after it the
// backend works again without being reopened.
func TestOutage(t *testing.T) {
	p := newProxy(t)
	cs := p.connString(t)
	ctx := context.Background()
	short, err := New(ctx, cs, Options{OpTimeout: 1500 * time.Millisecond, MaxRetries: 2, RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	patient, err := New(ctx, cs, Options{OpTimeout: 5 * time.Second, MaxRetries: 30, RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	s := openNS(t, short, storage.NamespaceRepository)
	ps := openNS(t, patient, storage.NamespaceRepository)
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Get(ctx, "k"); err != nil { // a pooled connection to lose
		t.Fatal(err)
	}

	p.stop()
	ops := map[string]func(context.Context) error{
		"Get":    func(ctx context.Context) error { _, err := s.Get(ctx, "k"); return err },
		"Set":    func(ctx context.Context) error { return s.Set(ctx, "k", []byte("w")) },
		"Create": func(ctx context.Context) error { return s.Create(ctx, "new", []byte("w")) },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k") },
		"List":   func(ctx context.Context) error { _, err := s.List(ctx); return err },
		"Ping":   short.Ping,
		"Namespace": func(ctx context.Context) error {
			_, err := short.Namespace(ctx, storage.NamespaceKBS)
			return err
		},
	}
	for name, op := range ops {
		start := time.Now()
		err := op(ctx)
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s during outage = %v; want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%s during outage took %v; want at most about OpTimeout", name, d)
		}
		if name == "Ping" {
			continue // one attempt, refused at once: no wait to cut short
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		err = op(cctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s during outage with an expiring caller context = %v; want DeadlineExceeded only", name, err)
		}
	}

	// A short outage: the patient backend's Get is retried until the
	// database is back.
	go func() {
		time.Sleep(300 * time.Millisecond)
		p.start()
	}()
	if v, err := ps.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get across a short outage = %q, %v; want v", v, err)
	}
	// Recovered: the short backend works again, nothing was changed by the
	// failed writes.
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after the outage = %q, %v; want v", v, err)
	}
	if _, err := s.Get(ctx, "new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(new) after the outage = %v; want ErrNotFound", err)
	}
	if err := short.Ping(ctx); err != nil {
		t.Errorf("Ping after the outage: %v", err)
	}
}

// TestTerminatedConnections: the server kills every pooled connection
// (pg_terminate_backend, SQLSTATE 57P01); the next operations reconnect
// transparently.
func TestTerminatedConnections(t *testing.T) {
	app := "sigil_test_" + randomHex(6)
	_, cs := testSchema(t, map[string]string{"application_name": app})
	ctx := context.Background()
	b, err := New(ctx, cs, Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := openNS(t, b, storage.NamespaceKBS)
	kill := func() {
		t.Helper()
		var n int
		adminQueryRow(t, &n, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE application_name = $1", app)
		if n == 0 {
			t.Fatal("no connection to terminate")
		}
	}
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		op   func() error
	}{
		{"Get", func() error {
			v, err := s.Get(ctx, "k")
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("got %q", v)
			}
			return err
		}},
		{"Set", func() error { return s.Set(ctx, "k", []byte("v")) }},
		{"Create", func() error { return s.Create(ctx, "c", []byte("c")) }},
		{"Delete", func() error { return s.Delete(ctx, "c") }},
		{"List", func() error { _, err := s.List(ctx); return err }},
		{"Ping", func() error { return b.Ping(ctx) }},
	}
	for _, st := range steps {
		if st.name != "Ping" {
			kill()
		} else {
			// Ping does not retry; a terminated idle connection is
			// discarded by the pool's own liveness ping after 1 s idle.
			kill()
			time.Sleep(1100 * time.Millisecond)
		}
		if err := st.op(); err != nil {
			t.Errorf("%s after the connections were terminated: %v", st.name, err)
		}
	}
}

func TestTransient(t *testing.T) {
	yes := []error{
		&pgconn.PgError{Code: "57P01", Severity: "FATAL"},
		&pgconn.PgError{Code: "57P03"},
		&pgconn.PgError{Code: "08006"},
		&pgconn.PgError{Code: "08P01"},
		&pgconn.PgError{Code: "40001"},
		&pgconn.PgError{Code: "40P01"},
		&pgconn.PgError{Code: "53300"},
		fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "57P05"}),
		io.EOF,
		io.ErrUnexpectedEOF,
		fmt.Errorf("read: %w", syscall.ECONNRESET),
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		pgconn.ErrConnClosed,
	}
	no := []error{
		&pgconn.PgError{Code: "28P01"}, // invalid_password
		&pgconn.PgError{Code: "3D000"}, // invalid_catalog_name
		&pgconn.PgError{Code: "42P01"}, // undefined_table
		&pgconn.PgError{Code: "23505"}, // unique_violation
		&pgconn.PgError{Code: "57014"}, // query_canceled
		context.Canceled,
		context.DeadlineExceeded,
		fmt.Errorf("x: %w", context.DeadlineExceeded),
		errors.New("closed pool"),
	}
	for _, err := range yes {
		if !transient(err) {
			t.Errorf("transient(%v) = false", err)
		}
	}
	for _, err := range no {
		if transient(err) {
			t.Errorf("transient(%v) = true", err)
		}
	}
}

func TestOptions(t *testing.T) {
	_, cs := testSchema(t, nil)
	ctx := context.Background()
	cases := []struct {
		cs       string
		opts     Options
		maxConns int32
		connect  time.Duration
	}{
		{cs, Options{}, DefaultMaxConns, DefaultConnectTimeout},
		{cs + "&pool_max_conns=3&connect_timeout=2", Options{}, 3, 2 * time.Second},
		{cs + "&pool_max_conns=3&connect_timeout=2", Options{MaxConns: 7, ConnectTimeout: time.Second}, 7, time.Second},
	}
	for _, c := range cases {
		b, err := New(ctx, c.cs, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		cfg := b.Pool().Config()
		if cfg.MaxConns != c.maxConns || cfg.ConnConfig.ConnectTimeout != c.connect {
			t.Errorf("New(%q, %+v): MaxConns %d, ConnectTimeout %v; want %d, %v",
				c.cs, c.opts, cfg.MaxConns, cfg.ConnConfig.ConnectTimeout, c.maxConns, c.connect)
		}
		if b.opts.OpTimeout != DefaultOpTimeout && c.opts.OpTimeout == 0 {
			t.Errorf("OpTimeout = %v; want default", b.opts.OpTimeout)
		}
		b.Close()
		b.Close() // idempotent
	}
	if o := (Options{MaxRetries: -1}).withDefaults(); o.MaxRetries != 0 {
		t.Errorf("MaxRetries -1 → %d; want 0", o.MaxRetries)
	}
	if o := (Options{}).withDefaults(); o.MaxRetries != DefaultMaxRetries || o.RetryBackoff != DefaultRetryBackoff {
		t.Errorf("defaults = %+v", o)
	}
}

func TestConnString(t *testing.T) {
	for _, c := range []struct {
		host                   string
		port                   int
		db, user, pass, wanted string
	}{
		{"", 0, "", "", "", "postgres://postgres@localhost:5432/postgres"},
		{"db.example", 6543, "kbs", "sigil", "p@ss/w:rd", "postgres://sigil:p%40ss%2Fw%3Ard@db.example:6543/kbs"},
		{"::1", 5432, "kbs", "u", "", "postgres://u@[::1]:5432/kbs"},
	} {
		got := ConnString(c.host, c.port, c.db, c.user, c.pass)
		if got != c.wanted {
			t.Errorf("ConnString(%q, %d, %q, %q, %q) = %q; want %q", c.host, c.port, c.db, c.user, c.pass, got, c.wanted)
		}
		cfg, err := pgconn.ParseConfig(got)
		if err != nil {
			t.Errorf("ParseConfig(%q): %v", got, err)
			continue
		}
		if c.pass != "" && cfg.Password != c.pass {
			t.Errorf("password round trip: %q; want %q", cfg.Password, c.pass)
		}
	}
}

// TestWatch: writes to a notify namespace through one Backend reach the
// Watch of another on the same database (LISTEN/NOTIFY), each exactly when
// the write happened; other namespaces stay silent.
func TestWatch(t *testing.T) {
	_, cs := testSchema(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer, err := New(ctx, cs, Options{NotifyNamespaces: []string{storage.NamespaceKBS}})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	watcher, err := New(ctx, cs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	got := make(chan string, 16)
	key := "policy-" + randomHex(4) // the channel is database-wide
	go func() {
		_ = watcher.Watch(ctx, func(ns, k string) {
			if k == key || k == "" {
				got <- ns + ":" + k
			}
		})
	}()
	kbs := openNS(t, writer, storage.NamespaceKBS)
	repo := openNS(t, writer, storage.NamespaceRepository)
	want := func(what string) {
		t.Helper()
		select {
		case g := <-got:
			if g != storage.NamespaceKBS+":"+key {
				t.Fatalf("%s: notification %q", what, g)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification", what)
		}
	}
	// Let the watcher start listening: retry the first write until it is seen.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := kbs.Set(ctx, key, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != storage.NamespaceKBS+":"+key {
				t.Fatalf("first notification %q", g)
			}
		case <-time.After(200 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("watcher never saw a write")
		}
		break
	}
	if err := kbs.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	want("delete")
	if err := kbs.Create(ctx, key, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	want("create")
	// A Create that inserts nothing, a write elsewhere: no notification.
	if err := kbs.Create(ctx, key, []byte("v3")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := repo.Set(ctx, key, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-got:
		t.Fatalf("unexpected notification %q", g)
	case <-time.After(300 * time.Millisecond):
	}
	if v, err := kbs.Get(ctx, key); err != nil || string(v) != "v2" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}
