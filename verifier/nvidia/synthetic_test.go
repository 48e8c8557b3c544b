package nvidia

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

var (
	synthNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	synthNotAfter  = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newHierarchy(t testing.TB) *nvidiatest.Hierarchy {
	t.Helper()
	h, err := nvidiatest.NewHierarchy(synthNotBefore, synthNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newDevice(t testing.TB, h *nvidiatest.Hierarchy, arch string, o nvidiatest.DeviceOptions) *nvidiatest.Device {
	t.Helper()
	d, err := h.NewDevice(arch, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newReport(t testing.TB, d *nvidiatest.Device, o nvidiatest.ReportOptions) []byte {
	t.Helper()
	r, err := d.Report(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func synthVerifier(t testing.TB, h *nvidiatest.Hierarchy, o Options) *Verifier {
	t.Helper()
	o.Roots = []*x509.Certificate{h.Root}
	return newVerifier(t, o)
}

func freshNonce(seed string) []byte {
	h := sha512.Sum384([]byte(seed)) // a SHA-384 report data digest (48 bytes)
	return h[:]
}

func toDevice(e nvidiatest.Entry) DeviceEvidence {
	return DeviceEvidence{Arch: e.Arch, UUID: e.UUID, Evidence: e.Evidence, Certificate: e.Certificate}
}

func TestSyntheticGenuine(t *testing.T) {
	h := newHierarchy(t)
	v := synthVerifier(t, h, Options{})
	rd := freshNonce("genuine")
	for _, arch := range []string{nvidiatest.Hopper, nvidiatest.Blackwell, nvidiatest.LS10} {
		t.Run(arch, func(t *testing.T) {
			d := newDevice(t, h, arch, nvidiatest.DeviceOptions{})
			rep := newReport(t, d, nvidiatest.ReportOptions{Nonce: rd[:32]})
			res, err := v.Verify(context.Background(), nvidiatest.EvidenceJSON(d.Entry("dev", rep)), verifier.Expected{ReportData: rd})
			if err != nil {
				t.Fatal(err)
			}
			c := res[0].Claims
			p := Arch(arch).claimPrefix()
			for _, k := range []string{"attestation-report-parsed", "attestation-report-signature-verified", "attestation-report-nonce-match", "attestation-report-cert-chain-fwid-match", "arch-check"} {
				if c[p+k] != true {
					t.Errorf("%s = %v", p+k, c[p+k])
				}
			}
			wantFWID := "match"
			if arch == nvidiatest.LS10 {
				wantFWID = "skipped-no-report-fwid"
			}
			if c[ClaimFWID] != wantFWID {
				t.Errorf("fwid = %v, want %s", c[ClaimFWID], wantFWID)
			}
			if c["ueid"] != d.Leaf.SerialNumber.String() {
				t.Errorf("ueid = %v", c["ueid"])
			}
			if res[0].Class != Arch(arch).Class() {
				t.Errorf("class = %s", res[0].Class)
			}
			m := c["measurements"].(map[string]any)
			if m["1"] != fmt.Sprintf("%x", nvidiatest.DefaultMeasurement(1)) {
				t.Errorf("measurement 1 = %v", m["1"])
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// Tampered copies and binding failures, each with its sentinel.
func TestSyntheticNegative(t *testing.T) {
	h := newHierarchy(t)
	other := newHierarchy(t)
	rd := freshNonce("negative")
	nonce := rd[:32]
	hop := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	rep := newReport(t, hop, nvidiatest.ReportOptions{Nonce: nonce})
	parsed, err := ParseReport(rep)
	if err != nil {
		t.Fatal(err)
	}
	sigOff := parsed.SignedLen
	noExt := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{OmitFWIDExtension: true})
	foreign := newDevice(t, other, nvidiatest.Hopper, nvidiatest.DeviceOptions{})

	chainB64 := base64.StdEncoding.EncodeToString(hop.ChainPEM())
	leafFlipped := flip(hop.Leaf.Raw, len(hop.Leaf.Raw)-10) // inside the signature
	badChain := nvidiatest.ChainPEM(append([]*x509.Certificate{{Raw: leafFlipped}}, hop.Chain[1:]...)...)

	noFWIDOpaque := hop.DefaultOpaque(64)[:7] // drop the FWID TLV
	wrongFWID := append(hop.DefaultOpaque(64)[:7], nvidiatest.TLV{Type: nvidiatest.TypeFWID, Data: make([]byte, 48)})

	cases := []struct {
		name    string
		dev     DeviceEvidence
		exp     []byte
		want    []error
		fwid    string
		sigOK   bool
		chainOK string
	}{
		{"flipped measurement byte", toDevice(hop.Entry("d", flip(rep, 37+8+20))), rd, []error{ErrSignature}, "match", false, "valid"},
		{"flipped nonce byte", toDevice(hop.Entry("d", flip(rep, 5))), rd, []error{ErrSignature, ErrNonceMismatch}, "match", false, "valid"},
		{"flipped signature byte", toDevice(hop.Entry("d", flip(rep, sigOff+3))), rd, []error{ErrSignature}, "match", false, "valid"},
		{"flipped leaf certificate byte", DeviceEvidence{Arch: "HOPPER", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: base64.StdEncoding.EncodeToString(badChain)}, rd, []error{ErrCertChain}, "not-checked", true, "invalid"},
		{"wrong nonce", toDevice(hop.Entry("d", rep)), freshNonce("other"), []error{ErrNonceMismatch}, "match", true, "valid"},
		{"report FWID differs", toDevice(hop.Entry("d", newReport(t, hop, nvidiatest.ReportOptions{Nonce: nonce, Opaque: wrongFWID}))), rd, []error{ErrFWID}, "mismatch", true, "valid"},
		{"leaf without FWID extension", toDevice(noExt.Entry("d", newReport(t, noExt, nvidiatest.ReportOptions{Nonce: nonce}))), rd, []error{ErrFWID}, "missing-cert-fwid", true, "valid"},
		{"chain from another root", toDevice(foreign.Entry("d", newReport(t, foreign, nvidiatest.ReportOptions{Nonce: nonce}))), rd, []error{ErrCertChain}, "not-checked", true, "invalid"},
		{"chain without root", DeviceEvidence{Arch: "HOPPER", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: base64.StdEncoding.EncodeToString(nvidiatest.ChainPEM(hop.Chain[:4]...))}, rd, []error{ErrCertChain, ErrChainLength}, "not-checked", true, "invalid"},
		{"chain out of order", DeviceEvidence{Arch: "HOPPER", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: base64.StdEncoding.EncodeToString(nvidiatest.ChainPEM(hop.Chain[0], hop.Chain[2], hop.Chain[1], hop.Chain[3], hop.Chain[4]))}, rd, []error{ErrCertChain}, "not-checked", true, "invalid"},
		{"certificate not base64", DeviceEvidence{Arch: "HOPPER", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: "%%%"}, rd, []error{ErrCertChain, ErrSignature}, "not-checked", false, "invalid"},
		{"evidence not hex or base64", DeviceEvidence{Arch: "HOPPER", Evidence: "%%%", Certificate: chainB64}, rd, []error{ErrMalformedReport}, "not-checked", false, "valid"},
		{"truncated report", DeviceEvidence{Arch: "HOPPER", Evidence: base64.StdEncoding.EncodeToString(rep[:sigOff+50]), Certificate: chainB64}, rd, []error{ErrMalformedReport}, "not-checked", false, "valid"},
		{"declared switch", toDevice(nvidiatest.Entry{Arch: "LS10", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: chainB64}), rd, []error{ErrArchMismatch}, "match", true, "valid"},
		{"declared Blackwell", toDevice(nvidiatest.Entry{Arch: "BLACKWELL", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: chainB64}), rd, []error{ErrArchMismatch, ErrFWID}, "missing-cert-fwid", true, "valid"},
		{"report without FWID field", toDevice(hop.Entry("d", newReport(t, hop, nvidiatest.ReportOptions{Nonce: nonce, Opaque: noFWIDOpaque}))), rd, nil, "skipped-no-report-fwid", true, "valid"},
		{"trailing bytes", toDevice(hop.Entry("d", newReport(t, hop, nvidiatest.ReportOptions{Nonce: nonce, Trailing: []byte{0, 0xff, 7}}))), rd, nil, "match", true, "valid"},
		{"short report data zero-padded", toDevice(hop.Entry("d", newReport(t, hop, nvidiatest.ReportOptions{Nonce: []byte{1, 2, 3}}))), []byte{1, 2, 3}, nil, "match", true, "valid"},
	}
	v := synthVerifier(t, h, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := v.VerifyDevice(context.Background(), tc.dev, verifier.Expected{ReportData: tc.exp})
			if len(tc.want) == 0 && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(tc.want) > 0 && err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
			c := res.Claims
			p := res.Claims["x-nvidia-device-type"]
			prefix := "x-nvidia-gpu-"
			if p == "nvswitch" {
				prefix = "x-nvidia-switch-"
			}
			if c[ClaimFWID] != tc.fwid {
				t.Errorf("fwid = %v, want %s", c[ClaimFWID], tc.fwid)
			}
			if c[prefix+"attestation-report-signature-verified"] != tc.sigOK {
				t.Errorf("signature-verified = %v, want %v", c[prefix+"attestation-report-signature-verified"], tc.sigOK)
			}
			cc := c[prefix+"attestation-report-cert-chain"].(map[string]any)
			if cc["x-nvidia-cert-status"] != tc.chainOK {
				t.Errorf("cert-status = %v, want %s", cc["x-nvidia-cert-status"], tc.chainOK)
			}
			if len(tc.want) > 0 && c["measres"] != "not-checked" {
				t.Errorf("measres = %v for a non-genuine device", c["measres"])
			}
		})
	}
	// Declaring a GPU as LS10 is not genuine and fails arch-check.
	res, _ := v.VerifyDevice(context.Background(), toDevice(nvidiatest.Entry{Arch: "LS10", Evidence: base64.StdEncoding.EncodeToString(rep), Certificate: chainB64}), verifier.Expected{ReportData: rd})
	if res.Claims["x-nvidia-switch-arch-check"] != false {
		t.Errorf("arch-check = %v", res.Claims["x-nvidia-switch-arch-check"])
	}
}

func TestSyntheticExpiredChain(t *testing.T) {
	h := newHierarchy(t)
	d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	rep := newReport(t, d, nvidiatest.ReportOptions{Nonce: []byte{9}})
	now := fixedNow
	v := synthVerifier(t, h, Options{Now: func() time.Time { return now }})
	ev := nvidiatest.EvidenceJSON(d.Entry("d", rep))
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{}); err != nil {
		t.Fatal(err)
	}
	if v.cache.Len() != 1 {
		t.Fatalf("cache holds %d chains", v.cache.Len())
	}
	// The cached chain must not outlive its validity.
	now = synthNotAfter.Add(time.Hour)
	res, err := v.Verify(context.Background(), ev, verifier.Expected{})
	if err != nil {
		t.Fatal(err)
	}
	cc := res[0].Claims["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
	if cc["x-nvidia-cert-status"] != "expired" {
		t.Errorf("cert-status = %v, want expired", cc["x-nvidia-cert-status"])
	}
	if cc["x-nvidia-cert-expiration-date"] != "2027-01-01T00:00:00Z" {
		t.Errorf("expiration = %v", cc["x-nvidia-cert-expiration-date"])
	}
	if _, err := synthVerifier(t, h, Options{Now: func() time.Time { return now }, FailOnInvalidDevice: true}).Verify(context.Background(), ev, verifier.Expected{}); !errors.Is(err, ErrCertChain) {
		t.Errorf("strict error = %v", err)
	}
}

func TestChainCacheBounded(t *testing.T) {
	h := newHierarchy(t)
	v := synthVerifier(t, h, Options{ChainCacheSize: 2})
	for i := range 4 {
		d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
		if _, err := v.VerifyDevice(context.Background(), toDevice(d.Entry(fmt.Sprint(i), newReport(t, d, nvidiatest.ReportOptions{}))), verifier.Expected{}); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache.Len() != 2 {
		t.Errorf("cache holds %d chains, want 2", v.cache.Len())
	}
	nv := synthVerifier(t, h, Options{ChainCacheSize: -1})
	if nv.cache != nil || nv.cache.Len() != 0 {
		t.Error("negative size must disable the cache")
	}
}

// Many devices: results in order, one bad device does not fail the others.
func TestSyntheticMultiDevice(t *testing.T) {
	h := newHierarchy(t)
	rd := freshNonce("multi")
	var entries []nvidiatest.Entry
	for i := range 8 {
		arch := nvidiatest.Hopper
		if i >= 6 {
			arch = nvidiatest.LS10
		}
		d := newDevice(t, h, arch, nvidiatest.DeviceOptions{})
		n := rd[:32]
		if i == 3 {
			n = make([]byte, 32) // stale nonce
		}
		entries = append(entries, d.Entry(fmt.Sprintf("GPU-%d", i), newReport(t, d, nvidiatest.ReportOptions{Nonce: n})))
	}
	ev := nvidiatest.EvidenceJSON(entries...)
	v := synthVerifier(t, h, Options{MaxConcurrency: 3})
	res, err := v.Verify(context.Background(), ev, verifier.Expected{ReportData: rd})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 8 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Claims["uuid"] != fmt.Sprintf("GPU-%d", i) {
			t.Errorf("result %d has uuid %v", i, r.Claims["uuid"])
		}
		wantClass := "gpu"
		if i >= 6 {
			wantClass = "switch"
		}
		if r.Class != wantClass {
			t.Errorf("result %d class %s", i, r.Class)
		}
		_, bad := r.Claims[ClaimErrors]
		if bad != (i == 3) {
			t.Errorf("result %d errors = %v", i, r.Claims[ClaimErrors])
		}
	}
	if res[3].Claims["x-nvidia-gpu-attestation-report-nonce-match"] != false {
		t.Error("device 3 nonce-match should be false")
	}
	sv := synthVerifier(t, h, Options{FailOnInvalidDevice: true})
	if _, err := sv.Verify(context.Background(), ev, verifier.Expected{ReportData: rd}); !errors.Is(err, ErrNonceMismatch) {
		t.Errorf("strict error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, ev, verifier.Expected{ReportData: rd}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled error = %v", err)
	}
}

type fakeAppraiser struct {
	res   *MeasurementResult
	err   error
	calls atomic.Int32
	got   DeviceInfo
}

func (f *fakeAppraiser) Appraise(_ context.Context, d DeviceInfo) (*MeasurementResult, error) {
	f.calls.Add(1)
	f.got = d
	return f.res, f.err
}

type fakeRevocation struct {
	status, detail string
	err            error
	chainLen       int
}

func (f *fakeRevocation) CheckChain(_ context.Context, chain []*x509.Certificate) (string, string, error) {
	f.chainLen = len(chain)
	return f.status, f.detail, f.err
}

func TestAppraisalInterfaces(t *testing.T) {
	h := newHierarchy(t)
	rd := freshNonce("appraise")
	d := newDevice(t, h, nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	rep := newReport(t, d, nvidiatest.ReportOptions{Nonce: rd})
	dev := toDevice(d.Entry("g0", rep))
	good := &CertChainStatus{Status: "valid", OCSPStatus: "good", Expiration: synthNotAfter}
	okRIM := &RIMStatus{ID: "X", Fetched: true, SchemaValidated: true, SignatureVerified: true, VersionMatch: true, MeasurementsAvailable: true, CertChain: good}

	t.Run("success", func(t *testing.T) {
		app := &fakeAppraiser{res: &MeasurementResult{Driver: okRIM, VBIOS: okRIM, IndexNoConflict: true, Success: true, OEMID: "5703"}}
		rev := &fakeRevocation{status: "good"}
		v := synthVerifier(t, h, Options{Appraiser: app, Revocation: rev})
		res, err := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: rd})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Claims
		for k, w := range map[string]any{
			"measres": "success", "secboot": true, "dbgstat": "disabled", "oemid": "5703",
			"x-nvidia-gpu-driver-rim-fetched": true, "x-nvidia-gpu-vbios-rim-version-match": true,
			"x-nvidia-gpu-vbios-index-no-conflict": true,
		} {
			if c[k] != w {
				t.Errorf("%s = %v, want %v", k, c[k], w)
			}
		}
		cc := c["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
		if cc["x-nvidia-cert-ocsp-status"] != "good" || cc["x-nvidia-cert-status"] != "valid" {
			t.Errorf("cert chain = %v", cc)
		}
		if rc := c["x-nvidia-gpu-driver-rim-cert-chain"].(map[string]any); rc["x-nvidia-cert-ocsp-status"] != "good" {
			t.Errorf("driver rim cert chain = %v", rc)
		}
		if rev.chainLen != 5 {
			t.Errorf("revocation checker got %d certificates", rev.chainLen)
		}
		g := app.got
		if g.DriverVersion != "550.90.07" || g.VBIOSVersion != "96.00.9F.00.01" || g.Project != "1010" || g.ProjectSKU != "0200" || g.ChipSKU != "882" || !bytes.Equal(g.NVDEC0Status, []byte{0x55}) || len(g.Measurements) != 64 || g.Measurements[1] != fmt.Sprintf("%x", nvidiatest.DefaultMeasurement(1)) {
			t.Errorf("device info = %+v", g)
		}
	})
	t.Run("mismatch and revoked", func(t *testing.T) {
		app := &fakeAppraiser{res: &MeasurementResult{Driver: okRIM, VBIOS: okRIM, IndexNoConflict: true, Mismatches: []MeasurementMismatch{{Index: 9, Source: "VBIOS", GoldenSize: 48, GoldenValues: []string{"aa"}, RuntimeSize: 48, RuntimeValue: "bb"}}}}
		v := synthVerifier(t, h, Options{Appraiser: app, Revocation: &fakeRevocation{status: "revoked", detail: "certificate_hold"}})
		res, err := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: rd})
		if err != nil {
			t.Fatalf("appraisal failures must not fail verification: %v", err)
		}
		c := res.Claims
		if c["measres"] != "fail" || c["secboot"] != nil || c["dbgstat"] != nil {
			t.Errorf("measres/secboot/dbgstat = %v/%v/%v", c["measres"], c["secboot"], c["dbgstat"])
		}
		if l, _ := c["x-nvidia-mismatch-measurement-records"].([]any); len(l) != 1 {
			t.Errorf("mismatch records = %v", c["x-nvidia-mismatch-measurement-records"])
		}
		cc := c["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
		if cc["x-nvidia-cert-status"] != "revoked" || cc["x-nvidia-cert-ocsp-status"] != "revoked" || cc["x-nvidia-cert-revocation-reason"] != "certificate_hold" {
			t.Errorf("cert chain = %v", cc)
		}
	})
	t.Run("errors", func(t *testing.T) {
		app := &fakeAppraiser{err: errors.New("rim service unreachable")}
		v := synthVerifier(t, h, Options{Appraiser: app, Revocation: &fakeRevocation{err: errors.New("ocsp down")}})
		res, err := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: rd})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Claims
		if c["measres"] != "fail" || c[ClaimMeasresReason] != "measurements not compared: rim service unreachable" {
			t.Errorf("measres = %v (%v)", c["measres"], c[ClaimMeasresReason])
		}
		cc := c["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
		if cc["x-nvidia-cert-ocsp-status"] != "unknown" || cc[ClaimOCSPDetail] != "ocsp down" {
			t.Errorf("cert chain = %v", cc)
		}
	})
	t.Run("not genuine skips appraisal", func(t *testing.T) {
		app := &fakeAppraiser{res: &MeasurementResult{Success: true}}
		v := synthVerifier(t, h, Options{Appraiser: app})
		res, _ := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: freshNonce("stale")})
		if app.calls.Load() != 0 || res.Claims["measres"] != "not-checked" {
			t.Errorf("appraiser called %d times, measres %v", app.calls.Load(), res.Claims["measres"])
		}
	})
	t.Run("not configured", func(t *testing.T) {
		v := synthVerifier(t, h, Options{})
		res, _ := v.VerifyDevice(context.Background(), dev, verifier.Expected{ReportData: rd})
		c := res.Claims
		if c["measres"] != "not-checked" || c[ClaimMeasresReason] == nil || c["secboot"] != nil || c["x-nvidia-gpu-driver-rim-fetched"] != nil {
			t.Errorf("claims = %v", c)
		}
		cc := c["x-nvidia-gpu-attestation-report-cert-chain"].(map[string]any)
		if cc["x-nvidia-cert-ocsp-status"] != "not-checked" {
			t.Errorf("ocsp status = %v", cc["x-nvidia-cert-ocsp-status"])
		}
	})
}
