// Package redis is the Redis/Valkey storage backend (Trustee's "Redis"
// storage type), compatible with the keys Trustee's KBS writes.
//
// Layout: one Redis string per entry, named "<namespace>:<key>" and holding
// the raw value bytes, so the resource "default/key/testfile" is the Redis key
// "repository:default/key/testfile". A Trustee KBS pointed at the same server
// and database reads what Sigil writes and vice versa. List walks the keyspace
// with SCAN MATCH "<namespace>:*" (never KEYS, which blocks the server) and
// strips the prefix.
//
// Keys follow the same rule as the LocalFs backend (localfs.ValidKey:
// non-empty, [A-Za-z0-9._/-], no "." or ".." segment), which is also the set
// Trustee's Redis backend accepts; others are rejected with
// storage.ErrInvalidKey. Since ":" cannot occur in a key, and namespaces must
// match [A-Za-z0-9._-]+, no key of one namespace can be mistaken for a key of
// another.
//
// Every operation is one Redis command (GET, SET, SET NX, DEL, or a series of
// SCANs for List), so readers never see a half-written value and racing
// Creates have exactly one winner. Stores also implement storage.Expirer with
// SET ... PX / SET ... NX PX: the server deletes such keys itself, so sessions
// kept this way need no sweeper.
//
// Errors: a connection that cannot be made, breaks, or times out yields an
// error wrapping storage.ErrUnavailable (and the underlying error), as do
// the server's transient refusals (LOADING, READONLY, MASTERDOWN, TRYAGAIN,
// CLUSTERDOWN, max clients, OOM). So does a deadline running out, whether
// Options.OpTimeout or the caller's (the error then also wraps
// context.DeadlineExceeded); a cancelled context yields just the context's
// error. Get, Set, SetTTL and List are retried on transient errors (at most
// Options.MaxRetries times, all within the per-operation timeout); Create,
// CreateTTL and Delete are never re-sent once they may have reached the
// server, because a replay would misreport the first attempt's success as
// ErrExists or ErrNotFound. An ErrUnavailable from one of those three after a
// timeout therefore means "outcome unknown": the write may have been applied.
//
// Durability is whatever the server is configured for (RDB/AOF); Redis
// acknowledges writes before they reach disk.
package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/localfs"
)

// DefaultURL is Trustee's default `url` of [storage_backend.backends.redis].
const DefaultURL = "redis://127.0.0.1:6379"

// EnvURL is the environment variable that overrides the configured URL, as
// in Trustee.
const EnvURL = "REDIS_URL"

// Defaults applied by New for zero Options fields (and absent URL
// parameters).
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second
	DefaultOpTimeout    = 2 * time.Second
	DefaultMaxRetries   = 2
)

// scanCount is the COUNT hint of each SCAN call of List.
const scanCount = 1000

// ResolveURL returns the URL to connect to, following Trustee: the REDIS_URL
// environment variable if it is set and non-empty, else configured, else
// DefaultURL.
func ResolveURL(configured string) string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	if configured != "" {
		return configured
	}
	return DefaultURL
}

// Options tune the client. For each zero field, a value given as a query
// parameter of the URL (go-redis names: pool_size, dial_timeout,
// read_timeout, write_timeout, max_retries) is used, else the default.
type Options struct {
	// PoolSize is the number of pooled connections. Default: go-redis's,
	// 10 per GOMAXPROCS.
	PoolSize int
	// DialTimeout bounds establishing one connection. Default 2 s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound one socket read or write.
	// Default 2 s each.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// OpTimeout bounds one operation, retries included (for List: each SCAN
	// call), on top of the caller's context. Default 2 s; negative: none.
	OpTimeout time.Duration
	// MaxRetries is how often an idempotent command is re-sent after a
	// transient error. Default 2; negative: never.
	MaxRetries int
	// NoPing makes New skip its initial PING, so a backend can be built
	// while the server is still down (Ping tells when it is up).
	NoPing bool
}

// Backend is a Redis connection pool serving namespaces as key prefixes.
type Backend struct {
	client    *goredis.Client
	opTimeout time.Duration
	closeOnce sync.Once
	closeErr  error
}

var _ storage.Backend = (*Backend)(nil)

// New connects to the server at rawURL (redis://[user:pass@]host:port[/db],
// rediss:// for TLS, or unix://path; empty means DefaultURL) and, unless
// opts.NoPing, checks it with PING, returning an error wrapping
// storage.ErrUnavailable if it does not answer. New does not read REDIS_URL;
// use ResolveURL for that. Error messages never contain the URL, which may
// hold a password.
func New(ctx context.Context, rawURL string, opts Options) (*Backend, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("redis: invalid url: %v", err)
	}
	if opts.PoolSize > 0 {
		o.PoolSize = opts.PoolSize
	}
	o.DialTimeout = pick(opts.DialTimeout, o.DialTimeout, DefaultDialTimeout)
	o.ReadTimeout = pick(opts.ReadTimeout, o.ReadTimeout, DefaultReadTimeout)
	o.WriteTimeout = pick(opts.WriteTimeout, o.WriteTimeout, DefaultWriteTimeout)
	switch {
	case opts.MaxRetries < 0:
		o.MaxRetries = -1
	case opts.MaxRetries > 0:
		o.MaxRetries = opts.MaxRetries
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	}
	// A refused dial is retried once inside the pool (safe for every
	// command, nothing was sent), not go-redis's 5 times 100 ms: an outage
	// should answer 503 within a few hundred ms (measured ~250 ms with the
	// default retries), not after the whole OpTimeout.
	o.DialerRetries = 2
	o.DialerRetryTimeout = 50 * time.Millisecond
	// Deadlines of the caller's context (and of OpTimeout) bound socket I/O.
	o.ContextTimeoutEnabled = true
	if o.ClientName == "" {
		o.ClientName = "sigil"
	}

	b := &Backend{client: goredis.NewClient(o), opTimeout: opts.OpTimeout}
	if b.opTimeout == 0 {
		b.opTimeout = DefaultOpTimeout
	}
	if !opts.NoPing {
		if err := b.Ping(ctx); err != nil {
			_ = b.client.Close()
			return nil, err
		}
	}
	return b, nil
}

func pick(explicit, fromURL, def time.Duration) time.Duration {
	switch {
	case explicit != 0:
		return explicit
	case fromURL != 0:
		return fromURL
	default:
		return def
	}
}

// Ping checks that the server answers (for readiness probes). A failure
// wraps storage.ErrUnavailable.
func (b *Backend) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	octx, cancel := b.opContext(ctx)
	defer cancel()
	if err := b.client.Ping(octx).Err(); err != nil {
		return wrapErr(ctx, "ping", "", err)
	}
	return nil
}

// Namespace returns the store of keys "<name>:…". name must match
// [A-Za-z0-9._-]+. No server round trip is made.
func (b *Backend) Namespace(ctx context.Context, name string) (storage.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validNamespace(name) {
		return nil, fmt.Errorf("redis: namespace %q: %w", name, storage.ErrInvalidKey)
	}
	return &Store{b: b, prefix: name + ":", match: escapeGlob(name) + ":*"}, nil
}

// Close closes the connection pool. Later calls return nil; operations after
// Close fail with an error that does not wrap storage.ErrUnavailable.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.client.Close() })
	return b.closeErr
}

func (b *Backend) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.opTimeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.opTimeout)
}

func validNamespace(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// escapeGlob quotes the characters SCAN MATCH patterns treat specially. Valid
// namespace names contain none of them; this keeps List exact should the
// name rule ever be relaxed.
func escapeGlob(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\', '^':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// Store is one namespace. It implements storage.Store and storage.Expirer.
type Store struct {
	b      *Backend
	prefix string // "<namespace>:"
	match  string // SCAN pattern for the namespace
}

var (
	_ storage.Store   = (*Store)(nil)
	_ storage.Expirer = (*Store)(nil)
)

func (s *Store) redisKey(key string) (string, error) {
	if !localfs.ValidKey(key) {
		return "", fmt.Errorf("redis: key %q: %w", key, storage.ErrInvalidKey)
	}
	return s.prefix + key, nil
}

// Get returns the value of key, or ErrNotFound (also once its TTL passed).
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rk, err := s.redisKey(key)
	if err != nil {
		return nil, err
	}
	octx, cancel := s.b.opContext(ctx)
	defer cancel()
	v, err := s.b.client.Get(octx, rk).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: get %q: %w", key, storage.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr(ctx, "get", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Set writes key with SET, removing any TTL it had.
func (s *Store) Set(ctx context.Context, key string, value []byte) error {
	return s.set(ctx, "set", key, value, 0)
}

// SetTTL writes key with SET … PX: the server deletes it after ttl
// (rounded up to whole milliseconds). ttl must be positive.
func (s *Store) SetTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: set %q: non-positive ttl %v", key, ttl)
	}
	return s.set(ctx, "set", key, value, ttl)
}

// Create writes key with SET NX, or returns ErrExists.
func (s *Store) Create(ctx context.Context, key string, value []byte) error {
	return s.set(ctx, "create", key, value, 0)
}

// CreateTTL is Create with SET … NX PX: the server deletes the key after
// ttl (rounded up to whole milliseconds). ttl must be positive.
func (s *Store) CreateTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: create %q: non-positive ttl %v", key, ttl)
	}
	return s.set(ctx, "create", key, value, ttl)
}

func (s *Store) set(ctx context.Context, op, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	args := []any{"set", rk, value}
	if ttl > 0 {
		ms := (ttl + time.Millisecond - 1) / time.Millisecond
		args = append(args, "px", int64(ms))
	}
	create := op == "create"
	if create {
		args = append(args, "nx")
	}
	octx, cancel := s.b.opContext(ctx)
	defer cancel()
	cmd := goredis.NewStatusCmd(octx, args...)
	if create {
		err = s.b.client.Process(octx, noRetryStatus{cmd})
	} else {
		err = s.b.client.Process(octx, cmd)
	}
	if err == nil {
		err = cmd.Err()
	}
	switch {
	case err == nil:
		return nil
	case create && errors.Is(err, goredis.Nil): // NX refused: the key exists
		return fmt.Errorf("redis: create %q: %w", key, storage.ErrExists)
	default:
		return wrapErr(ctx, op, key, err)
	}
}

// Delete removes key with DEL, or returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rk, err := s.redisKey(key)
	if err != nil {
		return err
	}
	octx, cancel := s.b.opContext(ctx)
	defer cancel()
	cmd := goredis.NewIntCmd(octx, "del", rk)
	if err := s.b.client.Process(octx, noRetryInt{cmd}); err != nil {
		return wrapErr(ctx, "delete", key, err)
	}
	if cmd.Val() == 0 {
		return fmt.Errorf("redis: delete %q: %w", key, storage.ErrNotFound)
	}
	return nil
}

// List returns the keys of the namespace, found with SCAN MATCH
// "<namespace>:*" COUNT 1000 (each SCAN call under its own OpTimeout).
// Keys present during the whole call are listed once; keys written or
// deleted meanwhile may or may not be. Entries whose suffix is not a valid
// key (not written by Sigil or Trustee) are skipped.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := make(map[string]struct{})
	keys := []string{}
	var cursor uint64
	for {
		octx, cancel := s.b.opContext(ctx)
		batch, next, err := s.b.client.Scan(octx, cursor, s.match, scanCount).Result()
		cancel()
		if err != nil {
			return nil, wrapErr(ctx, "list", "", err)
		}
		for _, rk := range batch {
			k, ok := strings.CutPrefix(rk, s.prefix)
			if !ok || !localfs.ValidKey(k) {
				continue
			}
			if _, dup := seen[k]; dup { // SCAN may return a key twice
				continue
			}
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
		if next == 0 {
			return keys, nil
		}
		cursor = next
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// noRetryStatus and noRetryInt mark a command as not to be re-sent by
// go-redis once it may have reached the server (SET NX, DEL: a replay would
// answer "exists" / "0 deleted" to our own first attempt).
type noRetryStatus struct{ *goredis.StatusCmd }

func (noRetryStatus) NoRetry() bool { return true }

type noRetryInt struct{ *goredis.IntCmd }

func (noRetryInt) NoRetry() bool { return true }

// wrapErr annotates a failed command. ctx is the caller's context: its
// cancellation is reported as such; deadlines, network errors and transient
// server refusals wrap storage.ErrUnavailable.
func wrapErr(ctx context.Context, op, key string, err error) error {
	what := "redis: " + op
	if key != "" {
		what += fmt.Sprintf(" %q", key)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, goredis.ErrClosed):
		return false // our own Close, not the server
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		goredis.IsLoadingError(err), goredis.IsReadOnlyError(err),
		goredis.IsMasterDownError(err), goredis.IsTryAgainError(err),
		goredis.IsClusterDownError(err), goredis.IsMaxClientsError(err),
		goredis.IsOOMError(err), goredis.IsNoReplicasError(err):
		return true
	}
	return false
}
