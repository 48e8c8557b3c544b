package kbs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

type ctxKey int

const requestIDKey ctxKey = 0

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID accepts a client-supplied X-Request-Id only if it is short
// and harmless in logs.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// accessLog assigns a request id, records metrics and writes one access line
// per request. The query string is not logged (it may carry tokens or
// parameters a plugin treats as sensitive); neither are headers or bodies;
// the path and method go through logSafe.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.activeConnections.Inc()
		defer func() {
			s.metrics.activeConnections.Dec()
			if v := recover(); v != nil {
				s.log.Error("panic serving request", "request_id", id, "panic", fmt.Sprint(v))
				if sw.status == 0 {
					writeError(sw, newError(VariantPluginInternalError, "Internal error", nil))
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observe(r, sw.status, d.Seconds(), sw.bytes)
			s.log.LogAttrs(ctx, slog.LevelInfo, "http",
				slog.String("request_id", id), slog.String("method", logSafe(r.Method)), slog.String("path", logSafe(r.URL.EscapedPath())),
				slog.Int("status", sw.status), slog.Int("bytes", sw.bytes), slog.Duration("duration", d),
				slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

func unescape(seg string) (string, error) { return url.PathUnescape(seg) }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// maxLoggedString bounds any client-chosen string written to the log.
const maxLoggedString = 256

// logSafe renders a client-chosen string for the log: printable ASCII is
// kept, anything else is escaped (\xNN, \uNNNN), and the result is cut at
// maxLoggedString with the original length noted. Log lines can then never
// carry control characters, forged line breaks or megabytes of junk.
func logSafe(s string) string { return logSafeN(s, maxLoggedString) }

// logSafeLong is logSafe for error causes, which explain failures and may
// quote client input: the same escaping, a larger bound.
func logSafeLong(s string) string { return logSafeN(s, 8*maxLoggedString) }

func logSafeN(s string, limit int) string {
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= limit {
			fmt.Fprintf(&b, "...(%d bytes)", len(s))
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r >= 0x20 && r < 0x7f && r != '\\':
			b.WriteRune(r)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
