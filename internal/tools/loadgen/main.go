// Command loadgen drives complete RCAR flows (auth + attest + get-resource,
// each with a fresh sample guest and TEE key) against a KBS on loopback and
// reports throughput and latency percentiles. With --server-pid it also
// reports the server's CPU time per flow, read from /proc.
//
// It only talks to the URL it is given; loops are bounded by --flows and
// --duration.
//
//	go run ./internal/tools/loadgen --url http://127.0.0.1:8080 --concurrency 64 --duration 20s \
//	    --setup --admin-token-file sigil-data/admin/admin-token
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/policy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	baseList := flag.String("url", "http://127.0.0.1:8080", "KBS URL (loopback only); a comma-separated list spreads flows over replicas")
	certFile := flag.String("cert-file", "", "CA certificate for an https KBS")
	conc := flag.Int("concurrency", 8, "concurrent clients")
	dur := flag.Duration("duration", 10*time.Second, "run time (upper bound)")
	maxFlows := flag.Int("flows", 1_000_000, "maximum number of flows")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up time not measured")
	path := flag.String("path", "default/test/secret", "resource to fetch")
	setup := flag.Bool("setup", false, "store the resource and an allow-all resource policy first")
	adminTokenFile := flag.String("admin-token-file", "", "admin token for --setup")
	pidList := flag.String("server-pid", "", "server process ids (comma-separated), to report their CPU time per flow")
	floor := flag.Bool("floor", false, "measure the per-flow cryptographic and policy floor in this run")
	flag.Parse()
	var floorSum time.Duration
	if *floor {
		var err error
		if floorSum, err = measureFloor(); err != nil {
			return err
		}
	}

	bases := strings.Split(*baseList, ",")
	for _, b := range bases {
		u, err := url.Parse(b)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
			return errors.New("refusing a non-loopback target")
		}
	}
	base := &bases[0]
	var pids []int
	for _, p := range strings.Split(*pidList, ",") {
		if p = strings.TrimSpace(p); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("--server-pid: %w", err)
			}
			pids = append(pids, n)
		}
	}
	var err error
	tr := &http.Transport{MaxIdleConns: *conc * 2, MaxIdleConnsPerHost: *conc * 2, IdleConnTimeout: 30 * time.Second}
	var certPEM []byte
	if *certFile != "" {
		if certPEM, err = os.ReadFile(*certFile); err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx := context.Background()

	if *setup {
		tok := ""
		if *adminTokenFile != "" {
			b, err := os.ReadFile(*adminTokenFile)
			if err != nil {
				return err
			}
			tok = strings.TrimSpace(string(b))
		}
		adm, err := client.NewAdmin(*base, tok, client.Options{HTTPClient: hc})
		if err != nil {
			return err
		}
		if err := adm.SetResource(ctx, *path, []byte("load-test-secret")); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		if err := adm.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}

	var next atomic.Uint64
	flow := func(ctx context.Context) error {
		// A fresh cookie jar and TEE key per flow: every flow is a new guest,
		// on the next replica in turn.
		target := bases[next.Add(1)%uint64(len(bases))]
		c, err := client.NewRCAR(target, sample.New(false), client.Options{HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second}})
		if err != nil {
			return err
		}
		if _, err := c.Attest(ctx); err != nil {
			return err
		}
		_, err = c.GetResource(ctx, *path)
		return err
	}

	// Warm-up.
	warmCtx, cancel := context.WithTimeout(ctx, *warm)
	drive(warmCtx, *conc, 1<<30, flow)
	cancel()

	cpuOf := func() time.Duration {
		var sum time.Duration
		for _, p := range pids {
			sum += procCPU(p)
		}
		return sum
	}
	cpu0 := cpuOf()
	runCtx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	start := time.Now()
	lat, failures, firstErr := drive(runCtx, *conc, *maxFlows, flow)
	elapsed := time.Since(start)
	cpu1 := cpuOf()

	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("concurrency=%d flows=%d failures=%d elapsed=%s flows/s=%.0f p50=%s p90=%s p99=%s max=%s\n",
		*conc, len(lat), failures, elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(),
		pct(.50).Round(time.Microsecond), pct(.90).Round(time.Microsecond), pct(.99).Round(time.Microsecond),
		pct(1).Round(time.Microsecond))
	if len(pids) > 0 && cpu1 > cpu0 && len(lat) > 0 {
		per := (cpu1 - cpu0) / time.Duration(len(lat))
		fmt.Printf("server_cpu=%s server_cpu_per_flow=%s\n", (cpu1 - cpu0).Round(time.Millisecond), per.Round(time.Microsecond))
		if floorSum > 0 {
			fmt.Printf("server_cpu_per_flow/floor=%.2f\n", float64(per)/float64(floorSum))
		}
	}
	if firstErr != nil {
		fmt.Println("first error:", firstErr)
	}
	if failures > 0 {
		return fmt.Errorf("%d flows failed", failures)
	}
	return nil
}

// drive runs flow from conc workers until ctx ends or n flows started.
func drive(ctx context.Context, conc, n int, flow func(context.Context) error) ([]time.Duration, int, error) {
	var started, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil && started.Add(1) <= int64(n) {
				t := time.Now()
				err := flow(ctx)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, int(failed.Load()), firstErr
}

// procCPU returns utime+stime of pid from /proc (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
