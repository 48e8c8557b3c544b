package app_test

// Adversarial HTTP tests: what a hostile client can do before it
// authenticates, over a real loopback listener.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/protocol"
)

// rawRequest sends text as-is (no client-side path cleaning) and reads one
// response.
func rawRequest(t *testing.T, addr, text string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func hostPort(k *testKBS) string { return strings.TrimPrefix(k.URL, "http://") }

// TestNoRedirects: net/http's ServeMux used to answer "..", "." and "//"
// with a redirect to the cleaned path (GET /kbs/v0/resource/a/b/../b/c
// went to a real resource). Every such request gets a 4xx ErrorInformation
// from the KBS itself.
func TestNoRedirects(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	paths := []string{
		"/kbs/v0/resource/a/b/../b/c",
		"/kbs/v0/reference-value/../../etc/passwd",
		"/kbs/v0/./auth",
		"/kbs/v0/resource/a/./b/c",
		"//kbs/v0/auth",
		"/kbs//v0/auth",
		"/kbs/v0",
		"/kbs",
		"/kbs/v0/../v0/resource-policy",
		"/metrics/",
		"/./metrics",
		"/healthz/..",
		"/kbs/v0/resource/a/b/%2e%2e/c",
		"/kbs/v0/resource/a%2fb/c/d",
		"/",
	}
	tree := func() []string {
		var files []string
		_ = filepath.WalkDir(filepath.Dir(k.Dir), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return nil
		})
		return files
	}
	before := tree()
	auth := "Authorization: Bearer " + k.token(t) + "\r\n"
	for _, method := range []string{"GET", "POST", "DELETE"} {
		for _, p := range paths {
			resp, body := rawRequest(t, hostPort(k), method+" "+p+" HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: 4\r\nConnection: close\r\n\r\nevil")
			var info protocol.ErrorInformation
			if resp.StatusCode < 400 || resp.StatusCode >= 500 || resp.Header.Get("Location") != "" ||
				json.Unmarshal(body, &info) != nil || !strings.HasPrefix(info.Type, protocol.ErrorTypePrefix) {
				t.Errorf("%s %s: %d Location=%q %s", method, p, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		}
	}
	if after := tree(); !slices.Equal(before, after) {
		t.Errorf("path tricks changed files around the data directory:\n%v\n→ %v", before, after)
	}
}

// TestMethodLabelsBounded: every client-chosen method string used to become
// a Prometheus label value.
func TestMethodLabelsBounded(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	for i := range 20 {
		resp, body := rawRequest(t, hostPort(k), fmt.Sprintf("M%d /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i))
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "MethodNotAllowed") {
			t.Fatalf("M%d: %d %s", i, resp.StatusCode, body)
		}
	}
	r := do(t, "GET", k.URL+"/metrics", nil, nil)
	if strings.Contains(string(r.body), `method="M1`) || !strings.Contains(string(r.body), `method="OTHER"`) {
		t.Errorf("metrics carry client method strings:\n%s", grepLines(string(r.body), "kbs_http_requests_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// floodConns opens n connections and writes head then chunk repeatedly
// (total bytes each) without ever finishing the request; it returns when
// every connection has sent its bytes or been closed by the server.
func floodConns(t *testing.T, addr string, n int, head string, chunk []byte, total int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	var wg sync.WaitGroup
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, head); err != nil {
				return
			}
			for sent := 0; sent < total; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return conns
}

// TestHeaderFloodBounded: 1,000 connections each sending an unterminated
// 1 MiB header block used to raise RSS to 2.4 GiB. Above 16 KiB per
// connection, header bytes come out of one shared budget; connections that
// cannot borrow are closed.
func TestHeaderFloodBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 100 MiB over loopback")
	}
	k := startKBS(t, kbsOpts{extraTOML: "\n[sigil]\nheader_budget_mib = 8\n"})
	before := heapInuse()
	chunk := []byte(strings.Repeat("a", 32<<10))
	// One header line that never ends: net/http accumulates it in full.
	conns := floodConns(t, hostPort(k), 200, "GET /kbs/v0/resource/a/b/c HTTP/1.1\r\nHost: x\r\nX-Junk: ", chunk, 512<<10)
	during := heapInuse()
	for _, c := range conns {
		c.Close()
	}
	grown := int64(during) - int64(before)
	t.Logf("heap in use: before %d MiB, during the flood %d MiB (grown %d MiB)", before>>20, during>>20, grown>>20)
	// Without the budget: 200 × 512 KiB × ~2 (line buffer copies) ≈ 200 MiB.
	if grown > 64<<20 {
		t.Errorf("heap grew by %d MiB under a header flood", grown>>20)
	}
	// The server still answers.
	wantErr(t, do(t, "GET", k.URL+"/kbs/v0/resource/a/b/c", nil, nil), 401, "TokenNotFound", "")
}

// TestBodyNotPresized: request bodies used to be allocated up front from
// Content-Length (2 MiB per connection before any check).
func TestBodyNotPresized(t *testing.T) {
	k := startKBS(t, kbsOpts{})
	before := heapInuse()
	var conns []net.Conn
	for range 100 {
		c, err := net.Dial("tcp", hostPort(k))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", 2<<20)
	}
	time.Sleep(300 * time.Millisecond) // let every handler start reading
	during := heapInuse()
	for _, c := range conns {
		c.Close()
	}
	grown := int64(during) - int64(before)
	t.Logf("100 connections announcing 2 MiB bodies: heap grew %d KiB", grown>>10)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB for 100 announced-but-unsent bodies", grown>>20)
	}
}

// TestConnectionLimit: connections above max_connections are refused with
// a 503 problem JSON; when clients leave, the server accepts again.
func TestConnectionLimit(t *testing.T) {
	k := startKBS(t, kbsOpts{extraTOML: "\n[sigil]\nmax_connections = 16\n"})
	var held []net.Conn
	for range 16 {
		c, err := net.Dial("tcp", hostPort(k))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond)
	c, err := net.Dial("tcp", hostPort(k))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("over the limit: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), protocol.ErrorTypePrefix+"TooManyConnections") {
		t.Fatalf("over the limit: %d %s", resp.StatusCode, b)
	}
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body := rawRequest(t, hostPort(k), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after clients left: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIdleAndSlowConnectionsClosed: idle keep-alive connections and
// clients that send headers too slowly are closed by the server.
func TestIdleAndSlowConnectionsClosed(t *testing.T) {
	k := startKBS(t, kbsOpts{extraTOML: "\n[sigil]\nidle_timeout_s = 1\nheader_timeout_s = 1\n"})
	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it
	}
	// Idle after one request.
	c, err := net.Dial("tcp", hostPort(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c, 5*time.Second) {
		t.Error("idle keep-alive connection not closed")
	}
	// Headers trickling in.
	s, err := net.Dial("tcp", hostPort(k))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := io.WriteString(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(s, 5*time.Second) {
		t.Error("slow-header connection not closed")
	}
}

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsCarryNoQueryOrRawInput: query strings (which may carry tokens)
// and attacker-chosen strings are never logged verbatim, at any level.
func TestLogsCarryNoQueryOrRawInput(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k := startKBS(t, kbsOpts{logger: logger})
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResourcePolicy(context.Background(), []byte(policy.ResourceDenyAll)); err != nil {
		t.Fatal(err)
	}
	const secret = "QUERYSECRET123"
	g, _ := client.NewRCAR(k.URL, sampleProvider(), client.Options{})
	tok, err := g.Attest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	do(t, "GET", k.URL+"/kbs/v0/resource/a/b/c?token="+secret, nil, bearer)           // policy denial
	do(t, "GET", k.URL+"/kbs/v0/nosuch%0aplugin/x?token="+secret, nil, bearer)        // unknown plugin
	do(t, "POST", k.URL+"/kbs/v0/auth?token="+secret, []byte(`{"version":`), nil)     // bad body
	do(t, "GET", k.URL+"/kbs/v0/resource/a%0alevel=ERROR/b/c?x="+secret, nil, bearer) // forged line
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Errorf("the query reached the log:\n%s", grepLines(out, secret))
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "level=ERROR") || strings.Contains(l, "\nlevel=") {
			t.Errorf("forged log line: %q", l)
		}
	}
	if !strings.Contains(out, "resource policy denied the request") {
		t.Errorf("debug log lacks the denial explanation:\n%s", out)
	}
}
