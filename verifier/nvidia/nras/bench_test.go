package nras

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/nras/nrastest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// BenchmarkVerifyDetachedEAT8GPU verifies an 8-GPU detached EAT: nine ES384
// signatures, eight submod digests and the claim checks.
func BenchmarkVerifyDetachedEAT8GPU(b *testing.B) {
	fake, err := nrastest.New(nrastest.Options{Now: func() time.Time { return epoch }})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	nonce := make([]byte, 32)
	raw, _, _ := fakeEAT(b, fake, hex.EncodeToString(nonce), 8)
	keys := StaticKeys{fake.Kid(): fake.PublicKey()}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := VerifyDetachedEAT(raw, keys, nonce, fake.Issuer(), epoch)
		if err != nil || len(res.Names) != 8 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttest8GPU is a full Attest round trip against the fake (HTTP on
// loopback, fake signing included, JWKS cached).
func BenchmarkAttest8GPU(b *testing.B) {
	fake, err := nrastest.New(nrastest.Options{Now: func() time.Time { return epoch }})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	nonce := make([]byte, 32)
	devs, _ := devices(b, nvidiatest.Hopper, 8, nonce)
	c, err := New(Options{BaseURL: fake.URL, HTTPClient: fake.Client(), Now: func() time.Time { return epoch }})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Attest(context.Background(), KindGPU, nonce, devs); err != nil {
			b.Fatal(err)
		}
	}
}
