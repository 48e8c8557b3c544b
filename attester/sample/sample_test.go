package sample_test

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/protocol"
)

// vectorRuntimeData is the runtime data of the worked example in
// guest-client.md §1.4: P-256 private scalar 0x0102…20, nonce = base64 of 32
// zero bytes.
func vectorRuntimeData(t *testing.T) protocol.RuntimeData {
	t.Helper()
	scalar := make([]byte, 32)
	for i := range scalar {
		scalar[i] = byte(i + 1)
	}
	priv, err := ecdh.P256().NewPrivateKey(scalar)
	if err != nil {
		t.Fatal(err)
	}
	pt := priv.PublicKey().Bytes() // 0x04 ‖ x ‖ y
	key := protocol.TeePubKey{
		Kty: "EC", Crv: "P-256", Alg: "ECDH-ES+A256KW",
		X: base64.RawURLEncoding.EncodeToString(pt[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(pt[33:65]),
	}
	if key.X != "UVw9brnjlrkE0_7Kf1T9zQzB6Ze_N13KUVrQpsO0A18" || key.Y != "RTa-OlDzGPv5pUdZAqIhUCvvDVfgjFOyzApW8X2fk1Q" {
		t.Fatalf("unexpected vector key %+v", key)
	}
	return protocol.RuntimeData{Nonce: base64.StdEncoding.EncodeToString(make([]byte, 32)), TeePubKey: key}
}

func TestWorkedVectors(t *testing.T) {
	tests := []struct {
		name           string
		withDevice     bool
		wantDevice     string // hex of the device digest
		wantAdditional string
		wantPrimary    string // hex of the primary digest
		wantEvidence   string // "" → derived from wantPrimary
	}{
		{
			name:         "no device",
			wantDevice:   "47a5f5e56d9e064a656c373b77acdb6d5b9b38d823586a7e79688d6ad1beb7a4b8a1865d63b7e44ab5e34ca59308d9e3",
			wantPrimary:  "bbfe86a638421c8bde0173f4716b22a53ad22f47b8b30fc6c22046c003a08a176eebf5ac85388b4979b097ca0de723bd",
			wantEvidence: `{"svn":"1","report_data":"u/6GpjhCHIveAXP0cWsipTrSL0e4sw/GwiBGwAOgihdu6/WshTiLSXmwl8oN5yO9"}`,
		},
		{
			name:           "sample device",
			withDevice:     true,
			wantDevice:     "47a5f5e56d9e064a656c373b77acdb6d5b9b38d823586a7e79688d6ad1beb7a4b8a1865d63b7e44ab5e34ca59308d9e3",
			wantAdditional: `{"sampledevice":{"svn":"2","report_data":"R6X15W2eBkplbDc7d6zbbVubONgjWGp+eWiNatG+t6S4oYZdY7fkSrXjTKWTCNnj"}}`,
			wantPrimary:    "86c71faf70f87f1bb1847ae44751eef15ef752afb4a6f06d90ebeaf5fa39ff84626c4449c6158f6f6522c3fd47a375a7",
		},
	}
	ctx := context.Background()
	rd := vectorRuntimeData(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sample.New(tt.withDevice)
			if a.Tee() != "sample" {
				t.Fatalf("Tee() = %q", a.Tee())
			}
			dev, err := client.DeviceReportData(client.DefaultHash, rd)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(dev); got != tt.wantDevice {
				t.Fatalf("device digest = %s, want %s", got, tt.wantDevice)
			}
			add, err := a.AdditionalEvidence(ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			if add != tt.wantAdditional {
				t.Fatalf("additional evidence = %q, want %q", add, tt.wantAdditional)
			}
			d, err := client.PrimaryReportData(client.DefaultHash, rd, add)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(d); got != tt.wantPrimary {
				t.Fatalf("primary digest = %s, want %s", got, tt.wantPrimary)
			}
			ev, err := a.PrimaryEvidence(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantEvidence
			if want == "" {
				want = `{"svn":"1","report_data":"` + base64.StdEncoding.EncodeToString(d) + `"}`
			}
			if string(ev) != want {
				t.Fatalf("primary evidence = %s, want %s", ev, want)
			}
			var parsed sample.Evidence
			if err := json.Unmarshal(ev, &parsed); err != nil || parsed.SVN != "1" {
				t.Fatalf("evidence does not round-trip: %v %+v", err, parsed)
			}
		})
	}
}

func TestReportDataNotPadded(t *testing.T) {
	for _, n := range []int{0, 32, 48, 64} {
		ev, err := sample.New(false).PrimaryEvidence(context.Background(), make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		var e sample.Evidence
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(e.ReportData)
		if err != nil || len(raw) != n {
			t.Fatalf("len %d: decoded %d bytes, err %v", n, len(raw), err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := sample.New(true)
	if _, err := a.PrimaryEvidence(ctx, []byte{1}); err == nil {
		t.Error("PrimaryEvidence ignored a cancelled context")
	}
	if _, err := a.AdditionalEvidence(ctx, []byte{1}); err == nil {
		t.Error("AdditionalEvidence ignored a cancelled context")
	}
}
