// Command attack runs the pre-authentication resource attacks of
// docs/benchmarks.md against a running KBS and reports the server's
// resident set size (read from /proc/<pid>/status) before, at the peak of,
// and after each attack.
//
//	go run ./internal/tools/attack -addr 127.0.0.1:8080 -pid $(pgrep -f 'sigil kbs')
//
// Attacks: headers (n connections, each sending one unterminated header
// line of -size bytes), bodies (n connections announcing a -size body and
// sending one byte), conns (n idle connections), methods (n requests with
// distinct method strings, then the /metrics size).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "KBS address (plain HTTP)")
	pid := flag.Int("pid", 0, "server process id, for RSS")
	n := flag.Int("n", 1000, "connections")
	size := flag.Int("size", 1<<20, "bytes per connection (headers, bodies)")
	which := flag.String("attacks", "headers,bodies,conns,methods", "attacks to run")
	hold := flag.Duration("hold", 3*time.Second, "how long to hold the connections at the peak")
	flag.Parse()
	for _, a := range strings.Split(*which, ",") {
		before := rss(*pid)
		var peak int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					peak = max(peak, rss(*pid))
				}
			}
		}()
		var note string
		var err error
		switch a {
		case "headers":
			note, err = flood(*addr, *n, "GET /kbs/v0/resource/a/b/c HTTP/1.1\r\nHost: x\r\nX-Junk: ", *size, *hold)
		case "bodies":
			head := fmt.Sprintf("POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", *size)
			note, err = flood(*addr, *n, head, 0, *hold)
		case "conns":
			note, err = flood(*addr, *n, "", 0, *hold)
		case "methods":
			note, err = methods(*addr, *n)
		default:
			err = fmt.Errorf("unknown attack %q", a)
		}
		close(stop)
		wg.Wait()
		time.Sleep(time.Second)
		after := rss(*pid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", a, err)
		}
		fmt.Printf("%-8s n=%d size=%d: RSS before %d MiB, peak %d MiB, after %d MiB; %s\n",
			a, *n, *size, before>>20, peak>>20, after>>20, note)
	}
}

// flood opens n connections, writes head and then junk bytes on each, holds
// them, and reports how many the server closed or refused.
func flood(addr string, n int, head string, junk int, hold time.Duration) (string, error) {
	conns := make([]net.Conn, 0, n)
	var dialErr error
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			dialErr = err
			break
		}
		conns = append(conns, c)
	}
	chunk := []byte(strings.Repeat("a", 32<<10))
	var wg sync.WaitGroup
	var mu sync.Mutex
	closed := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(c, head); err != nil && head != "" {
				mu.Lock()
				closed++
				mu.Unlock()
				return
			}
			for sent := 0; sent < junk; sent += len(chunk) {
				if _, err := c.Write(chunk[:min(len(chunk), junk-sent)]); err != nil {
					mu.Lock()
					closed++
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(hold)
	// A refused or budget-closed connection reads EOF or a 503 at once.
	refused := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err == nil || err == io.EOF {
			refused++
		}
		c.Close()
	}
	return fmt.Sprintf("%d connections opened, %d closed while sending, %d closed or answered by the server", len(conns), closed, refused), dialErr
}

func methods(addr string, n int) (string, error) {
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(c, "M%06d /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i)
		_, _ = http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("/metrics is %d bytes after %d distinct methods", len(b), n), nil
}

// rss returns the resident set size of pid in bytes (0 if unknown).
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
