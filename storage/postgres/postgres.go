// Package postgres is the PostgreSQL storage backend (Trustee's "Postgres"
// storage type), table-compatible with Trustee's KBS.
//
// # Layout
//
// Each namespace is one table named after it, in the connection's default
// schema (search_path), with Trustee's columns:
//
//	CREATE TABLE IF NOT EXISTS "<namespace>" (key TEXT PRIMARY KEY, value BYTEA NOT NULL)
//
// Trustee does not create its tables (its Helm chart's init SQL does); this
// backend creates a missing one when the namespace is opened, and uses an
// existing one as it is: a table Trustee created, whose value column allows
// NULL, is read and written unchanged (a NULL value reads as an empty value).
// Opening a namespace checks that the table has a key column and a bytea
// value column; the key column must carry a primary key or unique index
// (Set and Create rely on ON CONFLICT (key)).
//
// Namespace names must match [a-z0-9_]+ (at most 63 bytes): they are table
// names, always double-quoted in SQL, and lower case so that the quoted and
// unquoted spellings name the same table. Keys are restricted exactly as in
// the LocalFs backend and Trustee: non-empty, made of [A-Za-z0-9._/-], with
// no "." or ".." segment (see localfs.ValidKey); other keys are rejected with
// storage.ErrInvalidKey before any SQL runs. Keys and values are always sent
// as bound parameters, never spliced into SQL.
//
// # Statements and round trips
//
// Every operation is one single SQL statement in its own implicit
// transaction, so a reader never sees a half-written value and a failed
// statement changes nothing:
//
//	Get     SELECT value FROM t WHERE key = $1
//	Set     INSERT INTO t (key, value) VALUES ($1, $2)
//	          ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
//	Create  INSERT INTO t (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING
//	          (0 rows affected: storage.ErrExists)
//	Delete  DELETE FROM t WHERE key = $1 (0 rows affected: storage.ErrNotFound)
//	List    SELECT key FROM t
//
// Round trips: Get, Set, Create, Delete and List take 1 round trip each once
// the statement is prepared on the pooled connection (pgx caches prepared
// statements per connection; the first use of a statement on a connection
// costs 1 more for the Prepare). pgxpool pings a connection that sat idle for
// more than a second before handing it out (1 more). A retry repeats the
// statement. Namespace takes 2 (CREATE TABLE IF NOT EXISTS, layout check),
// Ping 1.
//
// # Timeouts, retries and unavailability
//
// Each operation runs under Options.OpTimeout (default 5 s) in addition to
// the caller's context; the deadline covers all retries. Transient failures —
// a connection that cannot be established or was lost (refused, reset, EOF,
// SQLSTATE class 08), admin/crash shutdown (57P01, 57P02), idle-session
// timeout (57P05), the server not accepting connections yet (57P03), too many
// connections (53300), serialization failure (40001) and deadlock (40P01) —
// are retried up to Options.MaxRetries times with jittered exponential
// backoff. When the database stays unreachable, or the operation runs out of
// OpTimeout, the error wraps storage.ErrUnavailable (and the cause), so the
// HTTP layer can answer 503 with Retry-After. Other errors (authentication
// failure, missing database, a malformed table) are returned as they are. A
// canceled or expired caller context is returned as the context's error,
// never as ErrUnavailable.
//
// Retrying is safe for every operation, with these documented consequences
// when a connection is lost after the server committed a statement but before
// its reply arrived (the outcome of the first attempt is then unknown):
//
//   - Get, List: none.
//   - Set: the value may be written twice; a concurrent Set that committed in
//     between is overwritten by the retry (the retry is then the Set that
//     took effect last, which a linearizable store may also do).
//   - Delete: the retry finds no row and returns storage.ErrNotFound although
//     this call removed the key; the key is gone either way.
//   - Create: the retry finds the key and returns storage.ErrExists although
//     the value stored may be this call's own. Create deliberately does not
//     compare the stored value and report success on a match: two callers
//     creating identical bytes (a constant "claimed" marker, a default
//     policy) could then both be told they won. So of racing Creates at most
//     one ever succeeds; in that rare window none may. A caller that must
//     know can Get the key and compare.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/localfs"
)

// Defaults for the zero Options fields.
const (
	DefaultMaxConns       = 10
	DefaultConnectTimeout = 5 * time.Second
	DefaultOpTimeout      = 5 * time.Second
	DefaultMaxRetries     = 4
	DefaultRetryBackoff   = 50 * time.Millisecond

	maxBackoff = time.Second
	// maxNamespaceLen is PostgreSQL's identifier limit (NAMEDATALEN - 1).
	maxNamespaceLen = 63
	// OIDs of the column types the layout check accepts.
	oidBytea   = 17
	oidText    = 25
	oidBpchar  = 1042
	oidVarchar = 1043
)

// Options tunes a Backend. The zero value selects the defaults.
type Options struct {
	// MaxConns is the pool size. 0: pool_max_conns from the connection
	// string if it has one, else DefaultMaxConns (10).
	MaxConns int32
	// ConnectTimeout bounds establishing one connection (dial, TLS,
	// authentication). 0: connect_timeout from the connection string if it
	// has one, else DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// OpTimeout bounds every operation, retries included. 0:
	// DefaultOpTimeout (5 s).
	OpTimeout time.Duration
	// MaxRetries is how many times a transient failure is retried. 0:
	// DefaultMaxRetries (4); negative: never retry.
	MaxRetries int
	// RetryBackoff is the delay before the first retry; it doubles for each
	// further retry up to 1 s, with jitter. 0: DefaultRetryBackoff (50 ms).
	RetryBackoff time.Duration
	// LazyConnect makes New return without contacting the server; the first
	// operation connects. By default New pings the server (with retries,
	// within OpTimeout) and fails if it cannot.
	LazyConnect bool
	// NotifyNamespaces are the namespaces whose writes are announced on the
	// NotifyChannel (pg_notify in the same statement as the write, so a
	// notification is sent exactly when the write commits) for Watch.
	NotifyNamespaces []string
}

// NotifyChannel is the LISTEN/NOTIFY channel of change notifications; the
// payload is "<namespace>:<key>".
const NotifyChannel = "sigil_changes"

func (o Options) withDefaults() Options {
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	return o
}

// Backend is a pool of connections to one PostgreSQL database. It is safe for
// concurrent use.
type Backend struct {
	pool *pgxpool.Pool
	opts Options
	cfg  *pgxpool.Config
}

var (
	_ storage.Backend        = (*Backend)(nil)
	_ storage.VolatileOpener = (*Backend)(nil)
)

// New opens a connection pool. connString is a libpq-style URL
// ("postgres://user:pass@host:5432/db?sslmode=disable") or keyword/value
// string ("host=... user=... dbname=..."); pgx's pool_* parameters are
// accepted. Unless opts.LazyConnect is set, New pings the server and returns
// an error wrapping storage.ErrUnavailable when it cannot be reached within
// opts.OpTimeout.
func New(ctx context.Context, connString string, opts Options) (*Backend, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgconn redacts the password in ParseConfigError's message.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("postgres: MaxConns %d < 0", opts.MaxConns)
	case !strings.Contains(connString, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	switch {
	case opts.ConnectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	case cfg.ConnConfig.ConnectTimeout == 0:
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	b := &Backend{opts: opts.withDefaults(), cfg: cfg}
	b.pool, err = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !opts.LazyConnect {
		if err := b.do(ctx, "connect", b.opts.MaxRetries, func(ctx context.Context) error {
			return b.pool.Ping(ctx)
		}); err != nil {
			b.pool.Close()
			return nil, err
		}
	}
	return b, nil
}

// ConnString builds a connection URL from Trustee's
// [storage_backend.backends.postgres] keys (db, username, password, port,
// host). Empty values take Trustee's defaults: db "postgres", username
// "postgres", no password, port 5432, host "localhost". (Trustee's
// POSTGRES_URL environment variable, when set, replaces the whole URL; that
// is the caller's business.)
func ConnString(host string, port int, db, username, password string) string {
	if host == "" {
		host = "localhost"
	}
	if port == 0 {
		port = 5432
	}
	if db == "" {
		db = "postgres"
	}
	if username == "" {
		username = "postgres"
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword(username, password)
	} else {
		u.User = url.User(username)
	}
	return u.String()
}

// Pool returns the underlying pgx pool (for metrics, e.g. Pool().Stat()).
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// Close closes the pool, waiting for connections in use to be returned.
// Calling it more than once is harmless.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}

// Ping checks that the database answers (one attempt, within OpTimeout), for
// readiness probes. An unreachable database gives an error wrapping
// storage.ErrUnavailable.
func (b *Backend) Ping(ctx context.Context) error {
	return b.do(ctx, "ping", 0, func(ctx context.Context) error { return b.pool.Ping(ctx) })
}

// Namespace returns the store backed by table name, creating the table if it
// does not exist. name must match [a-z0-9_]+ (at most 63 bytes), else the
// error wraps storage.ErrInvalidKey. An existing table whose layout does not
// fit (no key column, value not bytea) is an error.
func (b *Backend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	return b.namespace(ctx, name, false)
}

// VolatileNamespace is Namespace, except that a missing table is created
// UNLOGGED: writes skip the write-ahead log (faster, still atomic) and the
// table is emptied after a server crash and not replicated to standbys. An
// existing table is used as it is. It implements storage.VolatileOpener.
func (b *Backend) VolatileNamespace(ctx context.Context, name string) (storage.Store, error) {
	return b.namespace(ctx, name, true)
}

// ValidNamespace reports whether name can be a namespace of this backend.
func ValidNamespace(name string) bool {
	if name == "" || len(name) > maxNamespaceLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (b *Backend) namespace(ctx context.Context, name string, unlogged bool) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ValidNamespace(name) {
		return nil, fmt.Errorf("postgres: namespace %q (want [a-z0-9_]{1,63}): %w", name, storage.ErrInvalidKey)
	}
	t := pgx.Identifier{name}.Sanitize()
	create := "CREATE TABLE IF NOT EXISTS " + t + " (key TEXT PRIMARY KEY, value BYTEA NOT NULL)"
	if unlogged {
		create = "CREATE UNLOGGED TABLE IF NOT EXISTS " + t + " (key TEXT PRIMARY KEY, value BYTEA NOT NULL)"
	}
	op := "namespace " + name
	err := b.do(ctx, op, b.opts.MaxRetries, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, create)
		var pgErr *pgconn.PgError
		// Two sessions racing CREATE TABLE IF NOT EXISTS can both pass the
		// existence check; the loser fails on a catalog unique index (23505)
		// or with duplicate_table (42P07). The table exists then.
		if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P07") {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	err = b.do(ctx, op, b.opts.MaxRetries, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, "SELECT key, value FROM "+t+" WHERE false")
		if err != nil {
			return err
		}
		fields := rows.FieldDescriptions()
		var k, v uint32
		if len(fields) == 2 {
			k, v = fields[0].DataTypeOID, fields[1].DataTypeOID
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if (k != oidText && k != oidVarchar && k != oidBpchar) || v != oidBytea {
			return fmt.Errorf("table %s has columns key (type oid %d), value (type oid %d); want key text, value bytea", t, k, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if slices.Contains(b.opts.NotifyNamespaces, name) {
		// The write and its notification are one statement: the
		// notification goes out when, and only if, the write commits.
		notify := " RETURNING key) SELECT pg_notify('" + NotifyChannel + "', '" + name + ":' || key) FROM w"
		return &store{
			b:      b,
			name:   name,
			get:    "SELECT value FROM " + t + " WHERE key = $1",
			set:    "WITH w AS (INSERT INTO " + t + " (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" + notify,
			create: "WITH w AS (INSERT INTO " + t + " (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING" + notify,
			delete: "WITH w AS (DELETE FROM " + t + " WHERE key = $1" + notify,
			list:   "SELECT key FROM " + t,
		}, nil
	}
	return &store{
		b:      b,
		name:   name,
		get:    "SELECT value FROM " + t + " WHERE key = $1",
		set:    "INSERT INTO " + t + " (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
		create: "INSERT INTO " + t + " (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
		delete: "DELETE FROM " + t + " WHERE key = $1",
		list:   "SELECT key FROM " + t,
	}, nil
}

// do runs fn under the operation timeout, retrying transient failures.
func (b *Backend) do(ctx context.Context, op string, retries int, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	opCtx, cancel := context.WithTimeout(ctx, b.opts.OpTimeout)
	defer cancel()
	backoff := b.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := fn(opCtx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up: report its reason, not unavailability.
			return fmt.Errorf("postgres: %s: %w (%v)", op, cerr, err)
		}
		if opCtx.Err() != nil {
			return fmt.Errorf("postgres: %s: no answer within %v: %w: %w", op, b.opts.OpTimeout, storage.ErrUnavailable, err)
		}
		if !transient(err) {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if attempt >= retries {
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
		}
		// Full-range jitter on the upper half: [backoff/2, backoff).
		d := backoff/2 + rand.N(backoff/2+1)
		timer := time.NewTimer(d)
		select {
		case <-opCtx.Done():
			timer.Stop()
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("postgres: %s: %w (%v)", op, cerr, err)
			}
			return fmt.Errorf("postgres: %s: %w: %w", op, storage.ErrUnavailable, err)
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// transient reports whether err is a failure that a later attempt, possibly
// on a new connection, may not meet.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// A server-reported error: decided by SQLSTATE alone (so a failed
		// login, 28xxx, or a missing database, 3D000, is not retried even
		// though it arrives as a ConnectError).
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"53300", // too_many_connections
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now (starting up, recovery)
			"57P05": // idle_session_timeout
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception class
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		pgconn.SafeToRetry(err),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &netErr):
		return true
	}
	return false
}

type store struct {
	b    *Backend
	name string
	// SQL text of each operation, with the quoted table name.
	get, set, create, delete, list string
}

func (s *store) check(op, key string) error {
	if !localfs.ValidKey(key) {
		return fmt.Errorf("postgres: %s %s/%q: %w", op, s.name, key, storage.ErrInvalidKey)
	}
	return nil
}

// nonNil maps nil to an empty slice: pgx sends a nil []byte as NULL, which
// the NOT NULL value column would reject.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.check("get", key); err != nil {
		return nil, err
	}
	var v []byte
	found := true
	err := s.b.do(ctx, "get "+s.name+"/"+key, s.b.opts.MaxRetries, func(ctx context.Context) error {
		// pgx copies bytea into a fresh slice, so v is the caller's own.
		err := s.b.pool.QueryRow(ctx, s.get, key).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		found = true
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("postgres: get %s/%q: %w", s.name, key, storage.ErrNotFound)
	}
	return nonNil(v), nil // a NULL (Trustee's table allows it) reads as empty
}

func (s *store) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check("set", key); err != nil {
		return err
	}
	value = nonNil(value)
	return s.b.do(ctx, "set "+s.name+"/"+key, s.b.opts.MaxRetries, func(ctx context.Context) error {
		_, err := s.b.pool.Exec(ctx, s.set, key, value)
		return err
	})
}

func (s *store) Create(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check("create", key); err != nil {
		return err
	}
	value = nonNil(value)
	var inserted bool
	err := s.b.do(ctx, "create "+s.name+"/"+key, s.b.opts.MaxRetries, func(ctx context.Context) error {
		tag, err := s.b.pool.Exec(ctx, s.create, key, value)
		inserted = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return err
	}
	if !inserted {
		return fmt.Errorf("postgres: create %s/%q: %w", s.name, key, storage.ErrExists)
	}
	return nil
}

func (s *store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.check("delete", key); err != nil {
		return err
	}
	var deleted bool
	err := s.b.do(ctx, "delete "+s.name+"/"+key, s.b.opts.MaxRetries, func(ctx context.Context) error {
		tag, err := s.b.pool.Exec(ctx, s.delete, key)
		deleted = err == nil && tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return err
	}
	if !deleted {
		return fmt.Errorf("postgres: delete %s/%q: %w", s.name, key, storage.ErrNotFound)
	}
	return nil
}

// List returns the keys of the table. Rows whose key is not a valid key
// (written by other means than this backend or Trustee) are skipped, as
// Get could not read them.
func (s *store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := s.b.do(ctx, "list "+s.name, s.b.opts.MaxRetries, func(ctx context.Context) error {
		keys = keys[:0]
		rows, err := s.b.pool.Query(ctx, s.list)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			if localfs.ValidKey(k) {
				keys = append(keys, k)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// Watch listens for the change notifications of the NotifyNamespaces
// (written through any Backend on the same database) and calls fn with the
// namespace and key of each, until ctx ends. It holds one connection of its
// own; when that connection is lost it calls fn(ns, "") for every notify
// namespace (changes may have been missed) and reconnects with backoff.
func (b *Backend) Watch(ctx context.Context, fn func(namespace, key string)) error {
	backoff := b.opts.RetryBackoff
	missed := func() {
		for _, ns := range b.opts.NotifyNamespaces {
			fn(ns, "")
		}
	}
	for {
		err := b.listen(ctx, fn, func() { backoff = b.opts.RetryBackoff })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		missed()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		_ = err // reconnect; the store operations report outages themselves
	}
}

// listen runs one LISTEN session; connected is called once it listens.
func (b *Backend) listen(ctx context.Context, fn func(namespace, key string), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, b.cfg.ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if ns, key, ok := strings.Cut(n.Payload, ":"); ok {
			fn(ns, key)
		}
	}
}
