package kbs

import (
	"container/heap"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/protocol"
	"github.com/sigil-attestation/sigil/storage"
)

// SessionCookie is the RCAR session cookie name.
const SessionCookie = "kbs-session-id"

// session is one RCAR session. It is stored in Trustee's serde layout, an
// externally tagged enum, so Go and Rust replicas can share a store:
// {"Authed":{"request","challenge","id","timeout"}} or
// {"Attested":{"token","id","timeout"}}.
type session struct {
	ID        string
	Timeout   time.Time
	Request   protocol.Request   // Authed only
	Challenge protocol.Challenge // Authed only
	Token     string             // Attested only
}

func (s *session) attested() bool { return s.Token != "" }

type authedJSON struct {
	Request   protocol.Request   `json:"request"`
	Challenge protocol.Challenge `json:"challenge"`
	ID        string             `json:"id"`
	Timeout   string             `json:"timeout"`
}

type attestedJSON struct {
	Token   string `json:"token"`
	ID      string `json:"id"`
	Timeout string `json:"timeout"`
}

func (s *session) marshal() ([]byte, error) {
	ts := s.Timeout.UTC().Format(time.RFC3339Nano)
	if s.attested() {
		return json.Marshal(map[string]attestedJSON{"Attested": {Token: s.Token, ID: s.ID, Timeout: ts}})
	}
	return json.Marshal(map[string]authedJSON{"Authed": {Request: s.Request, Challenge: s.Challenge, ID: s.ID, Timeout: ts}})
}

func unmarshalSession(b []byte) (*session, error) {
	var raw struct {
		Authed   *authedJSON   `json:"Authed"`
		Attested *attestedJSON `json:"Attested"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	var s session
	var ts string
	switch {
	case raw.Attested != nil:
		s = session{ID: raw.Attested.ID, Token: raw.Attested.Token}
		ts = raw.Attested.Timeout
	case raw.Authed != nil:
		s = session{ID: raw.Authed.ID, Request: raw.Authed.Request, Challenge: raw.Authed.Challenge}
		ts = raw.Authed.Timeout
	default:
		return nil, errors.New("unknown session state")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, fmt.Errorf("session timeout: %w", err)
	}
	s.Timeout = t
	return &s, nil
}

// sessions keeps RCAR sessions in a storage namespace.
//
// Expiry costs what expires, not what lives: a store with native expiry
// (storage.Expirer, e.g. Redis) deletes sessions itself; otherwise every
// session this process creates enters a min-heap by deadline, and the
// sweeper pops and deletes only those whose deadline passed. A full List
// sweep runs once at startup, for sessions a previous process left.
type sessions struct {
	store   storage.Store
	now     func() time.Time
	timeout time.Duration
	rand    io.Reader
	log     *slog.Logger
	// maxLive bounds the sessions this process holds at once (0: no bound).
	maxLive int

	mu       sync.Mutex
	inFlight map[string]struct{} // sessions with an /attest being evaluated here
	expiries expiryHeap          // sessions created here, by deadline
	due      []string            // expired, not yet deleted
	// local holds copies of sessions this process wrote or read attested,
	// so that a guest that stays on this replica costs no storage read:
	// an authed copy serves only /attest (another replica may have
	// attested the session since), an attested copy serves everything
	// (an attested session never changes). At most maxLocalSessions,
	// evicted at random.
	local map[string]*session
}

// maxLocalSessions bounds the in-process session copies (about 3 KiB each).
const maxLocalSessions = 10_000

// remember keeps a copy of s (m.mu held).
func (m *sessions) rememberLocked(s *session) {
	if m.local == nil {
		m.local = make(map[string]*session)
	}
	if _, ok := m.local[s.ID]; !ok && len(m.local) >= maxLocalSessions {
		// Full: drop one copy at random (map iteration order). A copy
		// matters for the moments between /auth, /attest and the resource
		// request; a dropped one only costs a storage read.
		for id := range m.local {
			delete(m.local, id)
			break
		}
	}
	m.local[s.ID] = s
}

func (m *sessions) remember(s *session) {
	m.mu.Lock()
	m.rememberLocked(s)
	m.mu.Unlock()
}

// expiry is one entry of the expiry index.
type expiry struct {
	at time.Time
	id string
}

// expiryHeap is a min-heap of expiries by deadline (container/heap).
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// errTooManySessions refuses /auth while maxLive sessions are alive.
var errTooManySessions = errors.New("too many live RCAR sessions")

// popDueLocked moves every expired entry of the index to m.due and returns
// how many sessions are still alive. m.mu must be held.
func (m *sessions) popDueLocked(now time.Time) int {
	for m.expiries.Len() > 0 && !now.Before(m.expiries[0].at) {
		e := heap.Pop(&m.expiries).(expiry)
		m.due = append(m.due, e.id)
		delete(m.local, e.id)
	}
	if len(m.expiries) == 0 && cap(m.expiries) > 1024 {
		m.expiries = nil // give back the memory of a past peak
	}
	return m.expiries.Len()
}

// errAttestInFlight refuses a second /attest on a session while one is
// being evaluated: both would be verified against the same nonce, and
// whichever finished last would decide the session's token.
var errAttestInFlight = errors.New("another /attest for this session is in progress")

// begin marks id as being attested; done releases it.
func (m *sessions) begin(id string) (done func(), err error) {
	if !validSessionID(id) {
		return func() {}, nil // get refuses it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, busy := m.inFlight[id]; busy {
		return nil, errAttestInFlight
	}
	if m.inFlight == nil {
		m.inFlight = make(map[string]struct{})
	}
	m.inFlight[id] = struct{}{}
	return func() {
		m.mu.Lock()
		delete(m.inFlight, id)
		m.mu.Unlock()
	}, nil
}

var errNoSession = errors.New("session not found or expired")

// newID returns a UUIDv4 in "simple" form (32 lowercase hex characters).
func newID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}

func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (m *sessions) create(ctx context.Context, req protocol.Request, ch protocol.Challenge) (*session, error) {
	now := m.now()
	m.mu.Lock()
	live := m.popDueLocked(now)
	m.mu.Unlock()
	if m.maxLive > 0 && live >= m.maxLive {
		return nil, errTooManySessions
	}
	id, err := newID(m.rand)
	if err != nil {
		return nil, err
	}
	s := &session{ID: id, Timeout: now.Add(m.timeout), Request: req, Challenge: ch}
	if err := m.put(ctx, s); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if _, native := m.store.(storage.Expirer); !native || m.maxLive > 0 {
		heap.Push(&m.expiries, expiry{at: s.Timeout, id: id})
	}
	m.rememberLocked(s)
	m.mu.Unlock()
	return s, nil
}

// put writes s; with a store that expires keys itself, the key lives until
// the session's deadline.
func (m *sessions) put(ctx context.Context, s *session) error {
	b, err := s.marshal()
	if err != nil {
		return err
	}
	if ex, ok := m.store.(storage.Expirer); ok {
		ttl := s.Timeout.Sub(m.now())
		if ttl <= 0 {
			return errNoSession
		}
		return ex.SetTTL(ctx, s.ID, b, ttl)
	}
	return m.store.Set(ctx, s.ID, b)
}

// get loads a session; an expired one is deleted and reported as missing.
// forAttest accepts this process's copy of a session still being authed
// (only /attest may use it: another replica may have attested it since).
func (m *sessions) get(ctx context.Context, id string, forAttest bool) (*session, error) {
	if !validSessionID(id) {
		return nil, errNoSession
	}
	now := m.now()
	m.mu.Lock()
	c, ok := m.local[id]
	if ok && !now.Before(c.Timeout) {
		delete(m.local, id)
		ok = false
	}
	m.mu.Unlock()
	if ok && (c.attested() || forAttest) {
		return c, nil
	}
	b, err := m.store.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session storage: %w", err)
	}
	s, err := unmarshalSession(b)
	if err != nil {
		return nil, fmt.Errorf("session %s is corrupt: %w", id, err)
	}
	if !now.Before(s.Timeout) {
		if err := m.store.Delete(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			m.log.Warn("deleting expired session", "error", err)
		}
		return nil, errNoSession
	}
	if s.attested() {
		m.remember(s)
	}
	return s, nil
}

// sweepDue deletes the sessions of this process whose deadline passed and
// returns how many it removed: the cost is proportional to what expired.
func (m *sessions) sweepDue(ctx context.Context) (int, error) {
	m.mu.Lock()
	m.popDueLocked(m.now())
	due := m.due
	m.due = nil
	m.mu.Unlock()
	if _, native := m.store.(storage.Expirer); native {
		return 0, nil // the store deleted them
	}
	n := 0
	for i, id := range due {
		err := m.store.Delete(ctx, id)
		switch {
		case err == nil:
			n++
		case errors.Is(err, storage.ErrNotFound):
		default:
			m.mu.Lock()
			m.due = append(m.due, due[i:]...) // retried by the next sweep
			m.mu.Unlock()
			return n, err
		}
	}
	return n, nil
}

// sweep lists every session and deletes the expired ones: a full pass, for
// sessions no index of this process knows (left by a previous process).
func (m *sessions) sweep(ctx context.Context) (int, error) {
	keys, err := m.store.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	now := m.now()
	for _, k := range keys {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		b, err := m.store.Get(ctx, k)
		if err != nil {
			continue
		}
		s, err := unmarshalSession(b)
		if err == nil && now.Before(s.Timeout) {
			continue
		}
		if err := m.store.Delete(ctx, k); err == nil {
			n++
		}
	}
	return n, nil
}

// runSweeper makes one full sweep (unless the store expires keys itself),
// then deletes what expires every interval until ctx ends; on error it
// backs off from 5 s doubling to 300 s, as Trustee does.
func (m *sessions) runSweeper(ctx context.Context, interval time.Duration) {
	if _, native := m.store.(storage.Expirer); !native {
		if n, err := m.sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("initial session sweep failed", "error", err)
		} else if n > 0 {
			m.log.Debug("sessions of a previous run removed", "count", n)
		}
	}
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n, err := m.sweepDue(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if wait == interval {
				wait = 5 * time.Second
			} else {
				wait = min(2*wait, 300*time.Second)
			}
			m.log.Warn("session sweep failed", "error", err, "retry_in", wait)
		default:
			wait = interval
			if n > 0 {
				m.log.Debug("expired sessions removed", "count", n)
			}
		}
	}
}
