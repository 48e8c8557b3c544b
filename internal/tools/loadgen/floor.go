package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/policy"
)

// floorStage is one unavoidable step of a sample flow on the server.
type floorStage struct {
	name string
	fn   func(b *testing.B)
}

// measureFloor benchmarks, in this process, the cryptographic and policy
// steps a server cannot skip for one complete sample flow, and returns
// their sum. The HTTP, JSON and storage work around them is what the
// server adds on top.
func measureFloor() (time.Duration, error) {
	ctx := context.Background()
	teeKey, err := jose.GenerateTeeKey(rand.Reader, "")
	if err != nil {
		return 0, err
	}
	pub, _ := jose.TeePubKeyOf(teeKey)
	rd := map[string]any{"additional-evidence": "", "nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "tee-pubkey": pub.Map()}
	input := map[string]any{
		"sample":              map[string]any{"svn": "1", "launch_digest": "abcde", "platform_version": map[string]any{"major": 1, "minor": 4}, "debug": false},
		"report_data":         "u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9",
		"runtime_data_claims": map[string]any{"nonce": rd["nonce"], "tee-pubkey": pub.Map()},
	}
	appraisal, err := policy.CompileAppraisal("default_cpu", policy.DefaultAppraisalPolicies()["default_cpu"])
	if err != nil {
		return 0, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	broker, err := ear.NewBroker(ear.BrokerConfig{Signer: key})
	if err != nil {
		return 0, err
	}
	out, err := appraisal.Evaluate(ctx, input, noRV{}, false)
	if err != nil {
		return 0, err
	}
	tok, err := broker.Issue(map[string]ear.Submod{"cpu0": {TrustVector: out.TrustVector, PolicyID: "default", AnnotatedEvidence: input}})
	if err != nil {
		return 0, err
	}
	var claims map[string]any
	_ = json.Unmarshal(mustPayload(tok), &claims)
	resource, err := policy.CompileResource(policy.ResourceAllowAll)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte(tok))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	secret := make([]byte, 64)

	stages := []floorStage{
		{"runtime-data JCS + SHA-384", func(b *testing.B) {
			for range b.N {
				c, _ := jcs.Marshal(rd)
				sha512.Sum384(c)
			}
		}},
		{"appraisal policy (default_cpu)", func(b *testing.B) {
			for range b.N {
				_, _ = appraisal.Evaluate(ctx, input, noRV{}, false)
			}
		}},
		{"EAR ES256 signature", func(b *testing.B) {
			for range b.N {
				_, _ = ecdsa.SignASN1(rand.Reader, key, digest[:])
			}
		}},
		{"token ES256 verification", func(b *testing.B) {
			for range b.N {
				ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig)
			}
		}},
		{"resource policy (allow_all)", func(b *testing.B) {
			for range b.N {
				_, _ = resource.Allow(ctx, claims, policy.ResourceData{Plugin: "resource", ResourcePath: []string{"default", "test", "secret"}})
			}
		}},
		{"JWE ECDH-ES+A256KW P-256", func(b *testing.B) {
			for range b.N {
				_, _ = jose.Encrypt(rand.Reader, pub, secret)
			}
		}},
	}
	var sum time.Duration
	for _, s := range stages {
		r := testing.Benchmark(s.fn)
		per := time.Duration(r.NsPerOp())
		sum += per
		fmt.Printf("floor %-32s %8s\n", s.name, per)
	}
	fmt.Printf("floor %-32s %8s\n", "SUM", sum)
	return sum, nil
}

type noRV struct{}

func (noRV) Query(context.Context, string) (json.RawMessage, error) { return nil, nil }

func mustPayload(tok string) []byte {
	var parts [3]string
	n := 0
	start := 0
	for i := 0; i < len(tok) && n < 2; i++ {
		if tok[i] == '.' {
			parts[n] = tok[start:i]
			n++
			start = i + 1
		}
	}
	b, _ := base64URL(parts[1])
	return b
}
