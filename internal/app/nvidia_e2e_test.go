package app_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attester/sample"
	"github.com/sigil-attestation/sigil/client"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nras/nrastest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/ocsp"
	"github.com/sigil-attestation/sigil/verifier/nvidia/ocsp/ocsptest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/rim"
	"github.com/sigil-attestation/sigil/verifier/nvidia/rim/rimtest"
)

// gpuGuest is a sample CPU guest with synthetic NVIDIA devices that sign
// SPDM measurements over the device runtime-data digest, as a real GPU
// does over the nonce the attestation agent gives it.
type gpuGuest struct {
	cpu       client.EvidenceProvider
	devices   []*nvidiatest.Device
	measure   func(dev int) [][]byte // nil: the devices' default measurements
	wrongNonc int                    // device index signing a wrong nonce; -1 none
}

func (g *gpuGuest) Tee() string { return g.cpu.Tee() }

func (g *gpuGuest) PrimaryEvidence(ctx context.Context, rd []byte) (json.RawMessage, error) {
	return g.cpu.PrimaryEvidence(ctx, rd)
}

func (g *gpuGuest) AdditionalEvidence(_ context.Context, rd []byte) (string, error) {
	var entries []nvidiatest.Entry
	for i, d := range g.devices {
		o := nvidiatest.ReportOptions{Nonce: rd[:32]}
		if i == g.wrongNonc {
			o.Nonce = make([]byte, 32)
		}
		if g.measure != nil {
			o.Measurements = g.measure(i)
		}
		report, err := d.Report(o)
		if err != nil {
			return "", err
		}
		entries = append(entries, d.Entry(fmt.Sprintf("GPU-%d", i), report))
	}
	return `{"nvidia":` + string(nvidiatest.EvidenceJSON(entries...)) + `}`, nil
}

type nvidiaWorld struct {
	kbs     *testKBS
	devices []*nvidiatest.Device
	ocsp    *ocsptest.Responder
	nras    *nrastest.Server
}

// skipLeafChecker checks a device chain from the leaf's issuer up.
type skipLeafChecker struct{ c *ocsp.Checker }

func (s skipLeafChecker) CheckChain(ctx context.Context, chain []*x509.Certificate) (string, string, error) {
	return s.c.CheckChain(ctx, chain[1:])
}

// startNVIDIAKBSWith runs a KBS whose NVIDIA verifier trusts a synthetic
// device hierarchy and a synthetic RIM signer, served by fake RIM and OCSP
// services that follow NVIDIA's APIs. It also creates LS10 switches, sets
// verbose_token, and in remote mode points the KBS at a fake NRAS whose answers come from a real
// local verification of the devices (as nvidia.md §5.2 suggests).
func startNVIDIAKBSWith(t *testing.T, gpus, switches int, verbose, remote bool) *nvidiaWorld {
	t.Helper()
	now := time.Now()
	h, err := nvidiatest.NewHierarchy(now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w := &nvidiaWorld{}
	issuers := []ocsptest.Issuer{{Cert: h.Root, Key: h.RootKey}, {Cert: h.Identity, Key: h.IdentityKey}}
	for i := range gpus + switches {
		arch := nvidiatest.Hopper
		if i >= gpus {
			arch = nvidiatest.LS10
		}
		d, err := h.NewDevice(arch, nvidiatest.DeviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.devices = append(w.devices, d)
		issuers = append(issuers, ocsptest.Issuer{Cert: d.ICA, Key: d.ICAKey})
	}
	pki, err := rimtest.NewPKI(rimtest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pki.Chain[1:] {
		issuers = append(issuers, ocsptest.Issuer{Cert: c, Key: pki.Keys[i+1]})
	}
	driverID, _ := rim.HopperDriverID("550.90.07")
	vbiosID, _ := rim.VBIOSID("1010", "0200", "882", "96.00.9F.00.01")
	driverRIM, err := pki.Sign(rimtest.Spec{ColloquialVersion: "550.90.07", Measurements: goldenRange(1, 20)})
	if err != nil {
		t.Fatal(err)
	}
	vbiosRIM, err := pki.Sign(rimtest.Spec{ColloquialVersion: "96.00.9F.00.01", Measurements: goldenRange(21, 40)})
	if err != nil {
		t.Fatal(err)
	}
	switchID, _ := rim.SwitchBIOSID("96.10.55.00.01")
	switchRIM, err := pki.Sign(rimtest.Spec{ColloquialVersion: "96.10.55.00.01", Product: "LS10", Edition: "SWITCH", Measurements: goldenRange(1, 31)})
	if err != nil {
		t.Fatal(err)
	}
	rimSrv := httptest.NewServer(rimtest.NewService(map[string][]byte{driverID: driverRIM, vbiosID: vbiosRIM, switchID: switchRIM}))
	t.Cleanup(rimSrv.Close)
	w.ocsp = ocsptest.NewResponder(issuers...)
	ocspSrv := httptest.NewServer(w.ocsp)
	t.Cleanup(ocspSrv.Close)

	nvidiaTOML := ""
	if remote {
		rimClient, err := rim.NewClient(rim.ClientOptions{BaseURL: rimSrv.URL})
		if err != nil {
			t.Fatal(err)
		}
		rimVerifier, _ := rim.NewVerifier(rim.VerifierOptions{Roots: []*x509.Certificate{pki.Root}})
		checker, _ := ocsp.New(ocsp.Options{ResponderURL: ocspSrv.URL})
		appraiser, _ := nvidia.NewRIMAppraiser(nvidia.RIMAppraiserOptions{Fetcher: rimClient, Verifier: rimVerifier, Revocation: checker})
		local, err := nvidia.New(nvidia.Options{Roots: []*x509.Certificate{h.Root}, Appraiser: appraiser, Revocation: skipLeafChecker{checker}})
		if err != nil {
			t.Fatal(err)
		}
		fake, err := nrastest.New(nrastest.Options{Claims: nrastest.VerifierClaims(local)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		w.nras = fake
		nvidiaTOML = fmt.Sprintf("\n[attestation_service.verifier_config.nvidia_verifier]\ntype = \"Remote\"\nverifier_url = %q\n", fake.URL+"/v4/attest")
	}
	dir := t.TempDir()
	devRoot := filepath.Join(dir, "device-root.pem")
	rimRoot := filepath.Join(dir, "rim-root.pem")
	_ = os.WriteFile(devRoot, nvidiatest.ChainPEM(h.Root), 0o600)
	_ = os.WriteFile(rimRoot, nvidiatest.ChainPEM(pki.Root), 0o600)
	w.kbs = startKBS(t, kbsOpts{brokerTOML: fmt.Sprintf("verbose_token = %t", verbose), extraTOML: fmt.Sprintf(`
[sigil]
nvidia_device_roots = %q
nvidia_rim_roots = %q
nvidia_rim_url = %q
nvidia_ocsp_url = %q
%s`, devRoot, rimRoot, rimSrv.URL, ocspSrv.URL, nvidiaTOML)})
	return w
}

func goldenRange(first, last int) []rim.Measurement {
	var out []rim.Measurement
	for b := first; b <= last; b++ {
		out = append(out, rim.Measurement{Index: b - 1, Active: true, Name: fmt.Sprintf("m%d", b), Size: 48,
			Alternatives: []string{hex.EncodeToString(nvidiatest.DefaultMeasurement(b))}})
	}
	return out
}

// submods decodes the EAR token's submodules.
func submods(t *testing.T, tok string) map[string]map[string]json.RawMessage {
	t.Helper()
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Submods map[string]map[string]json.RawMessage `json:"submods"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Submods
}

const gpusAffirming = `package policy
import rego.v1
default allow := false
allow if {
	count(input.submods) > 1
	every name, sub in input.submods {
		name == "cpu0" or sub["ear.status"] == "affirming"
	}
}`

// TestNVIDIALocalEndToEnd: sample CPU evidence plus two GPUs through the
// KBS in local mode: SPDM over the fresh nonce, device chains with FWID,
// RIMs fetched and verified, OCSP, one EAR submodule per GPU; a GPU with a
// bad measurement yields a contraindicated submodule, not a failed
// attestation, and the resource policy decides.
func TestNVIDIALocalEndToEnd(t *testing.T) { testNVIDIAEndToEnd(t, false) }

// TestNVIDIARemoteEndToEnd: the same flow with verification by NRAS (a
// fake that follows NRAS's API and signs with a key from its JWKS); Sigil
// verifies the detached EAT and appraises NRAS's claims with the same
// default policy.
func TestNVIDIARemoteEndToEnd(t *testing.T) { testNVIDIAEndToEnd(t, true) }

func testNVIDIAEndToEnd(t *testing.T, remote bool) {
	ctx := context.Background()
	w := startNVIDIAKBSWith(t, 2, 0, false, remote)
	k := w.kbs
	a := newAdmin(t, k, k.token(t))
	if err := a.SetResource(ctx, secretPath, []byte("model-key")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetResourcePolicy(ctx, []byte(gpusAffirming)); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"allowed_driver_versions": []string{"550.90.07"}, "allowed_vbios_versions": []string{"96.00.9F.00.01"}} {
		if err := a.SetSampleReferenceValue(ctx, name, v); err != nil {
			t.Fatal(err)
		}
	}
	guestWith := func(measure func(int) [][]byte, wrongNonce int) *client.RCAR {
		c, err := client.NewRCAR(k.URL, &gpuGuest{cpu: sample.New(false), devices: w.devices, measure: measure, wrongNonc: wrongNonce}, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	good := guestWith(nil, -1)
	tok, err := good.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subs := submods(t, tok)
	for _, name := range []string{"gpu0", "gpu1"} {
		var status string
		_ = json.Unmarshal(subs[name]["ear.status"], &status)
		if status != "affirming" {
			t.Fatalf("%s: %s (%s)", name, status, subs[name]["ear.veraison.annotated-evidence"])
		}
	}
	if got, err := good.GetResource(ctx, secretPath); err != nil || string(got) != "model-key" {
		t.Fatalf("get-resource: %q %v", got, err)
	}
	if w.ocsp.Requests() == 0 {
		t.Fatal("no OCSP request was made")
	}
	if remote && len(w.nras.Requests()) == 0 {
		t.Fatal("NRAS was not asked")
	}

	// GPU 1 reports a measurement that no RIM allows.
	bad := guestWith(func(dev int) [][]byte {
		var m [][]byte
		for b := 1; b <= 64; b++ {
			m = append(m, nvidiatest.DefaultMeasurement(b))
		}
		if dev == 1 {
			m[24] = make([]byte, 48)
		}
		return m
	}, -1)
	tok, err = bad.Attest(ctx)
	if err != nil {
		t.Fatalf("a failing GPU must not fail the attestation: %v", err)
	}
	statuses := func(tok string) (string, string) {
		subs := submods(t, tok)
		var s0, s1 string
		_ = json.Unmarshal(subs["gpu0"]["ear.status"], &s0)
		_ = json.Unmarshal(subs["gpu1"]["ear.status"], &s1)
		return s0, s1
	}
	// Genuine but unexpected measurements: executables unrecognised (33),
	// the warning tier, as Trustee's default GPU policy gives.
	if s0, s1 := statuses(tok); s0 != "affirming" || s1 != "warning" {
		t.Fatalf("measurement mismatch: gpu0 %s gpu1 %s", s0, s1)
	}
	if _, err := bad.GetResource(ctx, secretPath); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("resource released with an unrecognised GPU: %v", err)
	}

	// GPU 1's evidence is not bound to this attestation (stale nonce): its
	// submodule is contraindicated; the attestation itself still succeeds.
	replay := guestWith(nil, 1)
	tok, err = replay.Attest(ctx)
	if err != nil {
		t.Fatalf("a non-genuine GPU must not fail the attestation: %v", err)
	}
	if s0, s1 := statuses(tok); s0 != "affirming" || s1 != "contraindicated" {
		t.Fatalf("stale nonce: gpu0 %s gpu1 %s", s0, s1)
	}
	if _, err := replay.GetResource(ctx, secretPath); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("resource released with a contraindicated GPU: %v", err)
	}
}

// TestNVIDIATokenSize: an 8-GPU + 4-switch attestation yields a bearer
// token under 64 KiB with default settings, and the KBS accepts it as a
// Bearer token; verbose_token = true opts into embedding raw evidence.
func TestNVIDIATokenSize(t *testing.T) {
	ctx := context.Background()
	for _, verbose := range []bool{false, true} {
		w := startNVIDIAKBSWith(t, 8, 4, verbose, false)
		a := newAdmin(t, w.kbs, w.kbs.token(t))
		if err := a.SetResource(ctx, secretPath, []byte("k")); err != nil {
			t.Fatal(err)
		}
		if err := a.SetResourcePolicy(ctx, []byte(policy.ResourceAllowAll)); err != nil {
			t.Fatal(err)
		}
		g, _ := client.NewRCAR(w.kbs.URL, &gpuGuest{cpu: sample.New(false), devices: w.devices, wrongNonc: -1}, client.Options{})
		tok, err := g.Attest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		subs := submods(t, tok)
		if len(subs) != 13 || subs["switch3"] == nil || subs["gpu7"] == nil {
			t.Fatalf("submodules: %d", len(subs))
		}
		t.Logf("verbose_token=%v: %d submodules, token %d bytes", verbose, len(subs), len(tok))
		if !verbose && len(tok) > 64<<10 {
			t.Fatalf("token of %d bytes exceeds 64 KiB", len(tok))
		}
		if verbose && len(tok) < 128<<10 {
			t.Fatalf("verbose_token = true should embed the raw evidence; token is only %d bytes", len(tok))
		}
		tc, _ := client.NewTokenClient(w.kbs.URL, tok, g.TeeKey(), client.Options{})
		if got, err := tc.GetResource(ctx, secretPath); err != nil || string(got) != "k" {
			t.Fatalf("bearer with a %d-byte token: %q %v", len(tok), got, err)
		}
	}
}
