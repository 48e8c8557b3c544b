package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWalkthrough runs the README's five-minute walkthrough against the
// zero-config server: start, store a secret, allow it, fetch it as a
// sample guest with `sigil client get-resource`.
func TestWalkthrough(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	env := func(k string) string {
		if k == "HOME" {
			return dir
		}
		return ""
	}
	var serverErr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"sigil", "kbs", "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0"}, nil, pw, &serverErr, env)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server exit %d: %s", code, serverErr.String())
		}
	})
	url := ""
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`ready at (https://\S+)`)
	deadline := time.After(20 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server ended: %s", serverErr.String())
			}
			if m := re.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-deadline:
			t.Fatal("server did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	cert := filepath.Join(dir, "data", "tls", "cert.pem")
	token := filepath.Join(dir, "data", "admin", "admin-token")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("walkthrough-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	client := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"sigil", "client", "--url", url, "--cert-file", cert}, args...), strings.NewReader(""), &out, &errb, env)
		return out.String() + errb.String(), code
	}
	if out, code := client("config", "--admin-token-file", token, "set-resource", "--path", "default/test/secret", "--resource-file", secretFile); code != 0 {
		t.Fatalf("set-resource: %s", out)
	}
	// The default resource policy denies the sample TEE.
	if out, code := client("get-resource", "--path", "default/test/secret"); code == 0 || !strings.Contains(out, "request unauthorized") {
		t.Fatalf("default policy: %d %s", code, out)
	}
	// Without the admin token the admin API is closed.
	if out, code := client("config", "set-resource-policy", "--allow-all"); code == 0 {
		t.Fatalf("anonymous admin call succeeded: %s", out)
	}
	if out, code := client("config", "--admin-token-file", token, "set-resource-policy", "--allow-all"); code != 0 {
		t.Fatalf("set-resource-policy: %s", out)
	}
	out, code := client("get-resource", "--path", "default/test/secret")
	if code != 0 || strings.TrimSpace(out) != base64.StdEncoding.EncodeToString([]byte("walkthrough-secret")) {
		t.Fatalf("get-resource: %d %q", code, out)
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sigil"}, nil, &out, &errb, os.Getenv); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	if code := run(context.Background(), []string{"sigil", "bogus"}, nil, &out, &errb, os.Getenv); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("bogus: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"/usr/bin/kbs", "--help"}, nil, &out, &errb, os.Getenv); code != 0 || !strings.Contains(out.String(), "config-file") {
		t.Fatalf("kbs alias: %d %s", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"sigil", "version"}, nil, &out, &errb, os.Getenv); code != 0 || !strings.HasPrefix(out.String(), "sigil ") {
		t.Fatalf("version: %s", out.String())
	}
}
