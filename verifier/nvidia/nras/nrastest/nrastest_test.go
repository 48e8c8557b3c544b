package nrastest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

func TestVBIOSString(t *testing.T) {
	got := vbiosString([]byte{0x00, 0x9f, 0x00, 0x96, 0x01, 0x00, 0x00, 0x00}, false)
	if got != "96.00.9F.00.01" {
		t.Errorf("GPU VBIOS = %q", got)
	}
	if got := vbiosString([]byte("96.10.55.00.01\x00"), true); got != "96.10.55.00.01" {
		t.Errorf("switch BIOS = %q", got)
	}
}

func TestFakeRejectsBadRequests(t *testing.T) {
	s, err := New(Options{ServiceKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := nvidiatest.NewHierarchy(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.NewDevice(nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.Report(nvidiatest.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := d.Entry("", rep)
	nonce := strings.Repeat("ab", 32)
	body := func(mod func(m map[string]any)) string {
		m := map[string]any{"nonce": nonce, "arch": "HOPPER", "claims_version": "3.0",
			"evidence_list": []any{map[string]any{"evidence": e.Evidence, "certificate": e.Certificate}}}
		if mod != nil {
			mod(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name, path, ctype, auth, body string
		want                          int
	}{
		{"ok", "/v4/attest/gpu", "application/json", "Bearer k", body(nil), 200},
		{"v3 ok", "/v3/attest/gpu", "application/json", "Bearer k", body(nil), 200},
		{"no key", "/v4/attest/gpu", "application/json", "", body(nil), 403},
		{"text body", "/v4/attest/gpu", "text/plain", "Bearer k", body(nil), 415},
		{"unknown kind", "/v4/attest/cpu", "application/json", "Bearer k", body(nil), 400},
		{"switch path", "/v4/attest/switch", "application/json", "Bearer k", body(nil), 400},
		{"bad json", "/v4/attest/gpu", "application/json", "Bearer k", "{", 400},
		{"short nonce", "/v4/attest/gpu", "application/json", "Bearer k", body(func(m map[string]any) { m["nonce"] = "abcd" }), 400},
		{"claims version", "/v4/attest/gpu", "application/json", "Bearer k", body(func(m map[string]any) { m["claims_version"] = "9.9" }), 400},
		{"empty list", "/v4/attest/gpu", "application/json", "Bearer k", body(func(m map[string]any) { m["evidence_list"] = []any{} }), 400},
		{"non-base64 evidence", "/v4/attest/gpu", "application/json", "Bearer k", body(func(m map[string]any) {
			m["evidence_list"] = []any{map[string]any{"evidence": "not base64! " + hex.EncodeToString(rep), "certificate": e.Certificate}}
		}), 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ctype)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, resp.StatusCode, tc.want, out)
			continue
		}
		if tc.want == 200 {
			arr, ok := out.([]any)
			if !ok || len(arr) != 2 {
				t.Errorf("%s: response %v", tc.name, out)
			}
		} else if m, ok := out.(map[string]any); !ok || m["message"] == "" {
			t.Errorf("%s: error body %v", tc.name, out)
		}
	}
}

func TestSuccessClaimsFromEvidence(t *testing.T) {
	h, err := nvidiatest.NewHierarchy(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.NewDevice(nvidiatest.Hopper, nvidiatest.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := d.Report(nvidiatest.ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pemb, _ := base64.StdEncoding.DecodeString(d.Entry("", rep).Certificate)
	c, err := SuccessClaims(context.Background(), Device{Kind: "gpu", Report: rep, CertificatePEM: pemb})
	if err != nil {
		t.Fatal(err)
	}
	if c["ueid"] != d.Chain[0].SerialNumber.String() || c["hwmodel"] != d.Chain[1].Subject.CommonName || c["measres"] != "success" {
		t.Errorf("claims %v", c)
	}
	if !OverallResult([]map[string]any{c}) {
		t.Error("success claims do not give an overall success")
	}
	c["x-nvidia-gpu-arch-check"] = false
	if OverallResult([]map[string]any{c}) || OverallResult(nil) {
		t.Error("a false claim (or no device) gives an overall success")
	}
}
