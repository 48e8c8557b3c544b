package nvidia

import (
	"context"
	"fmt"
	"testing"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// One Hopper report (Trustee's vector) with its chain cached.
func BenchmarkVerifyHopperCached(b *testing.B) {
	benchHopper(b, Options{})
}

// The same without the chain cache (chain parse + 4 ECDSA verifications).
func BenchmarkVerifyHopperUncached(b *testing.B) {
	benchHopper(b, Options{ChainCacheSize: -1})
}

func benchHopper(b *testing.B, o Options) {
	v := newVerifier(b, o)
	ev := evidenceJSON(b, device("HOPPER", trusteeUUID, readReport(b, "hopperAttestationReport.txt"), readFile(b, "hopper_cert_chain_case1.txt")))
	exp := verifier.Expected{ReportData: mustHex(b, trusteeNonce)}
	ctx := context.Background()
	if _, err := v.Verify(ctx, ev, exp); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, exp); err != nil {
			b.Fatal(err)
		}
	}
}

// Eight distinct devices (6 GPUs, 2 switches) in one evidence, verified
// concurrently (bounded by GOMAXPROCS), chains cached.
func BenchmarkVerify8Devices(b *testing.B) {
	h := newHierarchy(b)
	rd := freshNonce("bench")
	var entries []nvidiatest.Entry
	for i := range 8 {
		arch := nvidiatest.Hopper
		if i >= 6 {
			arch = nvidiatest.LS10
		}
		d := newDevice(b, h, arch, nvidiatest.DeviceOptions{})
		entries = append(entries, d.Entry(fmt.Sprintf("GPU-%d", i), newReport(b, d, nvidiatest.ReportOptions{Nonce: rd[:32]})))
	}
	ev := nvidiatest.EvidenceJSON(entries...)
	for _, conc := range []int{1, 0} {
		name := "sequential"
		if conc == 0 {
			name = "gomaxprocs"
		}
		b.Run(name, func(b *testing.B) {
			v := synthVerifier(b, h, Options{MaxConcurrency: conc, FailOnInvalidDevice: true})
			exp := verifier.Expected{ReportData: rd}
			if _, err := v.Verify(context.Background(), ev, exp); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), ev, exp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
