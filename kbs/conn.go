package kbs

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigil-attestation/sigil/protocol"
)

// ConnLimits bounds what unauthenticated clients can make the server hold:
// connections, and bytes of request headers not yet fully received.
//
// net/http buffers a request's whole header block before any handler runs,
// up to MaxHeaderBytes per connection. With a per-connection limit of about
// 1 MiB (needed for Bearer tokens carrying multi-GPU evidence), 1,000
// connections each sending an unterminated header block would hold about a
// gigabyte. The guard lets every connection have FreeHeaderBytes of header
// for free and makes anything above it borrow from one shared HeaderBudget;
// a connection that cannot borrow is closed.
type ConnLimits struct {
	// MaxConns is the most connections served at once (default 4096);
	// further connections get a 503 problem JSON (plain HTTP) or are closed
	// (TLS) at accept time. Above three quarters of it, responses carry
	// "Connection: close" so that idle keep-alive connections are recycled.
	MaxConns int
	// FreeHeaderBytes per connection are not charged to the budget
	// (default 16 KiB: ordinary requests never touch the budget).
	FreeHeaderBytes int
	// HeaderBudget is the total of header bytes above FreeHeaderBytes that
	// all connections together may hold while their headers are still
	// arriving (default 32 MiB).
	HeaderBudget int64
	// IdleTimeout closes keep-alive connections idle that long (default 30 s).
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds the time to receive a request's headers
	// (default 10 s): slow-header clients cannot hold a slot longer.
	ReadHeaderTimeout time.Duration
}

func (l ConnLimits) withDefaults() ConnLimits {
	if l.MaxConns <= 0 {
		l.MaxConns = 4096
	}
	if l.FreeHeaderBytes <= 0 {
		l.FreeHeaderBytes = 16 << 10
	}
	if l.HeaderBudget <= 0 {
		l.HeaderBudget = 32 << 20
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 30 * time.Second
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	return l
}

// errHeaderBudget closes a connection whose header could not borrow.
var errHeaderBudget = errors.New("kbs: request-header budget exhausted")

// connGuard enforces ConnLimits over the listeners it wraps.
type connGuard struct {
	limits   ConnLimits
	conns    atomic.Int64
	borrowed atomic.Int64
}

// guardedConn counts header bytes read while the connection is between
// requests (reading the next request's headers).
type guardedConn struct {
	net.Conn
	g         *connGuard
	mu        sync.Mutex
	inHeaders bool  // true until a handler starts, and again after it ends
	read      int64 // bytes read since inHeaders became true
	borrowed  int64 // bytes borrowed from the shared budget
	closeOnce sync.Once
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n <= 0 {
		return n, err
	}
	c.mu.Lock()
	if !c.inHeaders {
		c.mu.Unlock()
		return n, err
	}
	c.read += int64(n)
	need := c.read - int64(c.g.limits.FreeHeaderBytes) - c.borrowed
	if need > 0 {
		if c.g.borrowed.Add(need) > c.g.limits.HeaderBudget {
			c.g.borrowed.Add(-need)
			c.mu.Unlock()
			return 0, errHeaderBudget
		}
		c.borrowed += need
	}
	c.mu.Unlock()
	return n, err
}

// requestStarted releases the header budget: net/http has parsed the
// headers into the request the handler now holds.
func (c *guardedConn) requestStarted() {
	c.mu.Lock()
	c.inHeaders = false
	c.read = 0
	c.release()
	c.mu.Unlock()
}

// requestDone starts counting the next request's headers.
func (c *guardedConn) requestDone() {
	c.mu.Lock()
	c.inHeaders = true
	c.read = 0
	c.mu.Unlock()
}

func (c *guardedConn) release() {
	if c.borrowed > 0 {
		c.g.borrowed.Add(-c.borrowed)
		c.borrowed = 0
	}
}

func (c *guardedConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.release()
		c.inHeaders = false
		c.mu.Unlock()
		c.g.conns.Add(-1)
	})
	return c.Conn.Close()
}

type guardedListener struct {
	net.Listener
	g     *connGuard
	plain bool // no TLS above: a refused client can be told why
}

// refusal is the whole HTTP response to a connection over MaxConns.
func refusal() []byte {
	body, _ := json.Marshal(protocol.ErrorInformation{
		Type:   protocol.ErrorTypePrefix + VariantTooManyConnections,
		Detail: "Too many connections; retry later",
	})
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"+
		"Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.g.conns.Add(1) > int64(l.g.limits.MaxConns) {
			l.g.conns.Add(-1)
			if l.plain {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write(refusal())
			}
			_ = c.Close()
			continue
		}
		return &guardedConn{Conn: c, g: l.g, inHeaders: true}, nil
	}
}

type connKey struct{}

// connContext stores the guarded connection under a TLS layer, if any, in
// the connection's base context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if gc, ok := c.(*guardedConn); ok {
		return context.WithValue(ctx, connKey{}, gc)
	}
	return ctx
}

// trackRequest tells the connection guard when headers are complete and
// recycles connections when the server is near its connection limit.
func (g *connGuard) trackRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gc, ok := r.Context().Value(connKey{}).(*guardedConn); ok {
			gc.requestStarted()
			defer gc.requestDone()
		}
		if g.conns.Load() > int64(g.limits.MaxConns)*3/4 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// HTTPServer builds the http.Server for this KBS with limits applied, and
// Listen wraps listeners so that the limits hold. Use them together:
//
//	srv, wrap := s.HTTPServer(limits)
//	srv.Serve(wrap(tcpListener, isTLS)) // TLS, if any, wraps the result
func (s *Server) HTTPServer(limits ConnLimits) (*http.Server, func(ln net.Listener, tls bool) net.Listener) {
	limits = limits.withDefaults()
	g := &connGuard{limits: limits}
	srv := &http.Server{
		Handler:           g.trackRequest(s.handler),
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       limits.IdleTimeout,
		// Above the KBS's own budget, so that oversized headers get the
		// KBS's 431 problem JSON rather than net/http's plain text.
		MaxHeaderBytes: 2*s.cfg.HeaderLimit + 64<<10,
		ConnContext:    connContext,
	}
	wrap := func(ln net.Listener, tlsAbove bool) net.Listener {
		return &guardedListener{Listener: ln, g: g, plain: !tlsAbove}
	}
	return srv, wrap
}
