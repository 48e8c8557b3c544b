// Package cluster_test runs Sigil as operators scale it out: three `sigil
// kbs` processes on loopback sharing one PostgreSQL (resources, policies,
// reference values) and one Redis (sessions), with RCAR flows spread across
// replicas while a replica is killed and the databases restart.
//
// It starts private PostgreSQL and Redis servers (so restarting them does
// not disturb other tests); it needs root (PostgreSQL runs as the postgres
// user through runuser), initdb, postgres and redis-server. Without them it
// skips, unless SIGIL_REQUIRE_DB is set (CI sets it), where it fails.
package cluster_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/internal/app"
	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/protocol"
)

const secretPath = "cluster/test/secret"

func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("SIGIL_REQUIRE_DB") != "" {
		t.Fatalf("cluster test cannot run: %s", why)
	}
	t.Skipf("cluster test skipped: %s (set SIGIL_REQUIRE_DB to make this fatal)", why)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// server is a child process that can be stopped and started again.
type server struct {
	t     *testing.T
	name  string
	start func() *exec.Cmd
	cmd   *exec.Cmd
	addr  string
	log   *bytes.Buffer
}

func (s *server) up() {
	s.t.Helper()
	s.cmd = s.start()
	// Its own process group, so that a signal reaches everything it runs
	// (runuser does not pass signals on to PostgreSQL); and it dies with
	// the test.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.log = &bytes.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("%s: %v", s.name, err)
	}
	waitTCP(s.t, s.addr, 30*time.Second)
}

// down stops the process with sig and waits for it.
func (s *server) down(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func startPostgres(t *testing.T) *server {
	t.Helper()
	initdb, err1 := exec.LookPath("initdb")
	pg, err2 := exec.LookPath("postgres")
	_, err3 := exec.LookPath("runuser")
	need(t, err1 == nil && err2 == nil && err3 == nil, "initdb, postgres or runuser not found")
	need(t, os.Geteuid() == 0, "not root (PostgreSQL must run as the postgres user)")
	dir, err := os.MkdirTemp("", "sigil-cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("runuser", "-u", "postgres", "--", initdb, "-D", data, "-A", "trust", "-U", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v %s", err, out)
	}
	port := freePort(t)
	s := &server{t: t, name: "postgres", addr: "127.0.0.1:" + strconv.Itoa(port), start: func() *exec.Cmd {
		return exec.Command("runuser", "-u", "postgres", "--", pg, "-D", data, "-p", strconv.Itoa(port),
			"-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	}}
	s.up()
	t.Cleanup(func() { s.down(syscall.SIGINT) })
	return s
}

func startRedis(t *testing.T) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	need(t, err == nil, "redis-server not found")
	port := freePort(t)
	s := &server{t: t, name: "redis", addr: "127.0.0.1:" + strconv.Itoa(port), start: func() *exec.Cmd {
		return exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	}}
	s.up()
	t.Cleanup(func() { s.down(syscall.SIGTERM) })
	return s
}

// buildSigil builds the binary once per test run.
func buildSigil(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sigil")
	cmd := exec.Command("go", "build", "-o", out, "github.com/sigil-attestation/sigil/cmd/sigil")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// replicaConfig turns the zero-config start's configuration (shared keys)
// into a replica's: its own socket, PostgreSQL for state, Redis for sessions.
func replicaConfig(base, listen, pgURL, redisURL string) string {
	cfg := strings.Replace(base, `session_storage_type = "Memory"`, `session_storage_type = "Redis"`, 1)
	cfg = replaceSection(cfg, "[http_server]", fmt.Sprintf("[http_server]\nsockets = [%q]\ninsecure_http = true\n", listen))
	cfg = replaceSection(cfg, "[storage_backend]", fmt.Sprintf(
		"[storage_backend]\nstorage_type = \"Postgres\"\n\n[storage_backend.backends.postgres]\nhost = \"127.0.0.1\"\nport = %s\nusername = \"postgres\"\ndb = \"postgres\"\n\n[storage_backend.backends.redis]\nurl = %q\n",
		pgURL, redisURL))
	return cfg
}

// replaceSection replaces the table starting at header (up to the
// next table header) with repl. Sub-tables of header go too.
func replaceSection(cfg, header, repl string) string {
	i := strings.Index(cfg, header)
	if i < 0 {
		return cfg + "\n" + repl
	}
	rest := cfg[i+len(header):]
	j := 0
	for {
		k := strings.Index(rest[j:], "\n[")
		if k < 0 {
			j = len(rest)
			break
		}
		j += k + 1
		name := rest[j:]
		if strings.HasPrefix(name, "[") && !strings.HasPrefix(name, "[[") &&
			strings.HasPrefix(name, strings.TrimSuffix(header, "]")+".") {
			continue // a sub-table of the same section
		}
		break
	}
	return cfg[:i] + repl + "\n" + rest[j:]
}

type outcome int

const (
	ok outcome = iota
	retryable
	failed
)

// guest runs one RCAR flow with /auth on a, /attest on b and the resource
// GET on c, with the session cookie or, if bearer, the token.
type guest struct {
	priv crypto.PrivateKey
	pub  protocol.TeePubKey
	hc   *http.Client
}

func newGuest(t *testing.T) *guest {
	priv, err := jose.GenerateTeeKey(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jose.TeePubKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &guest{priv: priv, pub: pub, hc: &http.Client{Timeout: 10 * time.Second}}
}

type step struct {
	status int
	body   []byte
	header http.Header
	err    error
}

func (g *guest) do(method, url string, body []byte, hdr map[string]string) step {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return step{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return step{status: resp.StatusCode, body: b, header: resp.Header}
}

// classify: 200 is done; a connection error (replica down) or a 503 with
// Retry-After is retryable; anything else fails the flow.
func classify(s step) (outcome, string) {
	switch {
	case s.err != nil:
		return retryable, s.err.Error()
	case s.status == http.StatusServiceUnavailable && s.header.Get("Retry-After") != "":
		return retryable, string(s.body)
	case s.status == http.StatusOK:
		return ok, ""
	}
	return failed, fmt.Sprintf("%d %s", s.status, s.body)
}

func (g *guest) flow(a, b, c string, bearer bool) (outcome, string) {
	r := g.do("POST", a+"/kbs/v0/auth", []byte(`{"version":"0.4.0","tee":"sample","extra-params":""}`), nil)
	if o, why := classify(r); o != ok {
		return o, "auth: " + why
	}
	var ch protocol.Challenge
	if err := json.Unmarshal(r.body, &ch); err != nil {
		return failed, "challenge: " + err.Error()
	}
	cookie, _, _ := strings.Cut(r.header.Get("Set-Cookie"), ";")
	rd, _ := jcs.Marshal(map[string]any{"additional-evidence": "", "nonce": ch.Nonce, "tee-pubkey": g.pub.Map()})
	d := sha512.Sum384(rd)
	ev, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(d[:])})
	att, _ := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: g.pub},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	r = g.do("POST", b+"/kbs/v0/attest", att, map[string]string{"Cookie": cookie})
	if o, why := classify(r); o != ok {
		return o, "attest: " + why
	}
	var tok protocol.AttestResponse
	if err := json.Unmarshal(r.body, &tok); err != nil {
		return failed, "attest response: " + err.Error()
	}
	hdr := map[string]string{"Cookie": cookie}
	if bearer {
		hdr = map[string]string{"Authorization": "Bearer " + tok.Token}
	}
	r = g.do("GET", c+"/kbs/v0/resource/"+secretPath, nil, hdr)
	if o, why := classify(r); o != ok {
		return o, "resource: " + why
	}
	var jwe protocol.Response
	if err := json.Unmarshal(r.body, &jwe); err != nil {
		return failed, "jwe: " + err.Error()
	}
	plain, err := jose.Decrypt(g.priv, &jwe)
	if err != nil || string(plain) != "cluster secret" {
		return failed, fmt.Sprintf("decrypted %q, %v", plain, err)
	}
	return ok, ""
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, Redis and three KBS replicas")
	}
	pg := startPostgres(t)
	t.Logf("postgres on %s", pg.addr)
	rd := startRedis(t)
	t.Logf("redis on %s", rd.addr)
	bin := buildSigil(t)
	t.Log("sigil built")

	dir := t.TempDir()
	boot, err := app.RunBootstrap(app.BootstrapOptions{DataDir: filepath.Join(dir, "shared"), Listen: "127.0.0.1:1", InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(boot.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	adminToken, err := os.ReadFile(boot.AdminTokenPath)
	if err != nil {
		t.Fatal(err)
	}
	pgPort := strings.TrimPrefix(pg.addr, "127.0.0.1:")
	replicas := make([]*server, 3)
	urls := make([]string, 3)
	for i := range replicas {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		cfgPath := filepath.Join(dir, fmt.Sprintf("replica%d.toml", i))
		if err := os.WriteFile(cfgPath, []byte(replicaConfig(string(base), addr, pgPort, "redis://"+rd.addr)), 0o600); err != nil {
			t.Fatal(err)
		}
		replicas[i] = &server{t: t, name: fmt.Sprintf("replica%d", i), addr: addr, start: func() *exec.Cmd {
			cmd := exec.Command(bin, "kbs", "-c", cfgPath)
			cmd.Env = append(os.Environ(), "SIGIL_LOG=warn", "POSTGRES_URL=", "REDIS_URL=")
			return cmd
		}}
		replicas[i].up()
		t.Logf("replica %d on %s", i, addr)
		urls[i] = "http://" + addr
		r := replicas[i]
		t.Cleanup(func() {
			r.down(syscall.SIGTERM)
			if t.Failed() {
				t.Logf("%s log:\n%s", r.name, r.log)
			}
		})
	}

	ctx := context.Background()
	adm, err := client.NewAdmin(urls[0], strings.TrimSpace(string(adminToken)), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.SetResource(ctx, secretPath, []byte("cluster secret")); err != nil {
		t.Fatal(err)
	}
	// Through replica 0; the others see it within their cache bound.
	if err := adm.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)

	// Steady state: every cross-replica flow succeeds.
	g := newGuest(t)
	for i := range 6 {
		if o, why := g.flow(urls[i%3], urls[(i+1)%3], urls[(i+2)%3], i%2 == 0); o != ok {
			t.Fatalf("steady flow %d: %s", i, why)
		}
	}

	t.Log("steady state: cross-replica flows succeed")
	// Chaos: flows on four workers while a replica dies and comes back,
	// PostgreSQL restarts and Redis restarts.
	var mu sync.Mutex
	counts := map[outcome]int{}
	var failures []string
	reasons := map[string]int{} // retryable outcomes by step and kind
	var redisRestarting bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGuest(t)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				redisWindow := redisRestarting
				mu.Unlock()
				n := w + i
				o, why := g.flow(urls[n%3], urls[(n+1)%3], urls[(n+2)%3], n%2 == 0)
				mu.Lock()
				// Sessions live in Redis, which keeps nothing on disk: a
				// restart drops them, and the guest must handshake again
				// (what a 401 on /attest or on a session cookie tells it).
				if o == failed && (redisWindow || redisRestarting) && strings.Contains(why, "401") {
					o = retryable
				}
				counts[o]++
				if o == retryable {
					reasons[reasonKind(why)]++
				}
				if o == failed {
					failures = append(failures, why)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	replicas[2].down(syscall.SIGKILL)
	time.Sleep(time.Second)
	replicas[2].up()
	time.Sleep(500 * time.Millisecond)
	pg.down(syscall.SIGINT)
	time.Sleep(time.Second)
	pg.up()
	time.Sleep(time.Second)
	mu.Lock()
	redisRestarting = true
	mu.Unlock()
	rd.down(syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	rd.up()
	time.Sleep(time.Second)
	mu.Lock()
	redisRestarting = false
	mu.Unlock()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("chaos flows: %d succeeded, %d retryable, %d failed; retryable by kind: %v", counts[ok], counts[retryable], counts[failed], reasons)
	if len(failures) > 0 {
		t.Errorf("%d flows failed with a non-retryable error, e.g. %s", len(failures), failures[0])
	}
	if counts[ok] == 0 {
		t.Error("no flow succeeded during the run")
	}

	// Recovery: every replica serves again, the resource is intact.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < 9; {
		o, why := g.flow(urls[i%3], urls[(i+1)%3], urls[(i+2)%3], i%2 == 1)
		if o == ok {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, u := range urls {
		r := g.do("GET", u+"/readyz", nil, nil)
		if r.status != 200 {
			t.Errorf("%s/readyz: %d %s", u, r.status, r.body)
		}
	}

	// A policy set through one replica applies on the others: at once with
	// PostgreSQL's notifications, within the 2 s cache bound without them.
	start := time.Now()
	if err := adm.SetResourcePolicy(ctx, []byte(policy.ResourceDenyAll)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		for {
			o, why := g.flow(urls[i], urls[i], urls[i], false)
			if o == failed && strings.Contains(why, "PolicyDeny") {
				break
			}
			if time.Since(start) > 2500*time.Millisecond {
				t.Fatalf("replica %d still releases 2.5 s after the policy changed: %v %s", i, o, why)
			}
		}
	}
	t.Logf("deny-all set on replica 0 was enforced by replicas 1 and 2 after %v", time.Since(start).Round(time.Millisecond))

	// No forged or foreign session is accepted.
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	forged := "kbs-session-id=" + hex.EncodeToString(raw[:])
	for _, u := range urls {
		r := g.do("GET", u+"/kbs/v0/resource/"+secretPath, nil, map[string]string{"Cookie": forged})
		if r.status != http.StatusUnauthorized {
			t.Errorf("forged session on %s: %d %s", u, r.status, r.body)
		}
		r = g.do("GET", u+"/kbs/v0/resource/"+secretPath, nil, map[string]string{"Authorization": "Bearer " + forgedToken(t)})
		if r.status != http.StatusUnauthorized {
			t.Errorf("foreign token on %s: %d %s", u, r.status, r.body)
		}
	}
}

// reasonKind condenses a retryable outcome: the step and what happened.
func reasonKind(why string) string {
	step, rest, _ := strings.Cut(why, ": ")
	switch {
	case strings.Contains(rest, "connection refused"), strings.Contains(rest, "connection reset"), strings.Contains(rest, "EOF"):
		return step + " replica down"
	case strings.Contains(rest, "StorageUnavailable"):
		return step + " 503 storage"
	case strings.HasPrefix(rest, "401"):
		return step + " 401 session lost with Redis"
	}
	return step + " other"
}

// forgedToken is an EAR-shaped token signed by a key no replica trusts.
func forgedToken(t *testing.T) string {
	t.Helper()
	priv, err := jose.GenerateTeeKey(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := jose.TeePubKeyOf(priv)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`))
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"iat": now, "exp": now + 60, "submods": map[string]any{"cpu0": map[string]any{
		"ear.status": "affirming", "ear.veraison.annotated-evidence": map[string]any{"tdx": map[string]any{},
			"runtime_data_claims": map[string]any{"tee-pubkey": pub.Map()}}}}})
	return header + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
}
