package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/policy"
)

// BenchmarkFlow measures one complete sample flow (auth + attest +
// get-resource, fresh guest and TEE key each time) over loopback HTTP,
// client and server in this process.
func BenchmarkFlow(b *testing.B) {
	benchFlow(b, kbsOpts{topTOML: `session_storage_type = "Memory"`})
}

// BenchmarkFlowLocalFsSessions: the same with sessions on LocalFs, as a
// Trustee config without session_storage_type gives (volatile namespace:
// atomic writes without fsync).
func BenchmarkFlowLocalFsSessions(b *testing.B) { benchFlow(b, kbsOpts{}) }

func benchFlow(b *testing.B, o kbsOpts) {
	ctx := context.Background()
	k := startKBS(b, o)
	a, _ := client.NewAdmin(k.URL, k.token(b), client.Options{})
	if err := a.SetResource(ctx, secretPath, []byte("bench-secret")); err != nil {
		b.Fatal(err)
	}
	if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := client.NewRCAR(k.URL, sample.New(false), client.Options{HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Attest(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := c.GetResource(ctx, secretPath); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAttestedSessionHeap reports the heap held per live attested RCAR
// session (sessions in memory, sample TEE, verbose_token = false) as
// B/session: 2,000 guests attest and keep their sessions.
func BenchmarkAttestedSessionHeap(b *testing.B) {
	ctx := context.Background()
	k := startKBS(b, kbsOpts{topTOML: `session_storage_type = "Memory"`})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	attest := func() {
		g, err := client.NewRCAR(k.URL, sample.New(false), client.Options{HTTPClient: hc})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Attest(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 50 { // warm caches and pools
		attest()
	}
	const n = 2000
	before := heapInuse()
	for range n {
		attest()
	}
	per := float64(int64(heapInuse())-int64(before)) / n
	for range b.N {
	}
	b.ReportMetric(per, "B/session")
}
