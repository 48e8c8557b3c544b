package nras

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nras/nrastest"
	"github.com/sigil-attestation/sigil/verifier/nvidia/nvidiatest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type env struct {
	fake  *nrastest.Server
	clk   *clock
	nonce []byte
}

func newEnv(t *testing.T, o nrastest.Options) *env {
	t.Helper()
	clk := &clock{t: epoch}
	if o.Now == nil {
		o.Now = clk.Now
	}
	fake, err := nrastest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	nonce := make([]byte, 32)
	for i := range nonce {
		nonce[i] = byte(i * 7)
	}
	return &env{fake: fake, clk: clk, nonce: nonce}
}

func (e *env) client(t *testing.T, mod func(*Options)) *Client {
	t.Helper()
	o := Options{BaseURL: e.fake.URL, HTTPClient: e.fake.Client(), Now: e.clk.Now}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// devices makes n synthetic devices of arch whose reports carry nonce.
func devices(t testing.TB, arch string, n int, nonce []byte) ([]nvidia.DeviceEvidence, *nvidiatest.Hierarchy) {
	t.Helper()
	h, err := nvidiatest.NewHierarchy(epoch.Add(-24*time.Hour), epoch.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var out []nvidia.DeviceEvidence
	for i := 0; i < n; i++ {
		d, err := h.NewDevice(arch, nvidiatest.DeviceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := d.Report(nvidiatest.ReportOptions{Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		e := d.Entry("uuid", rep)
		if i%2 == 1 {
			e = d.HexEntry("uuid", rep) // Trustee's hex form is converted to base64
		}
		out = append(out, nvidia.DeviceEvidence{Arch: e.Arch, UUID: e.UUID, Evidence: e.Evidence, Certificate: e.Certificate})
	}
	return out, h
}

func TestAttestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind, arch, prefix string
		n                  int
	}{
		{KindGPU, nvidiatest.Hopper, "GPU-", 3},
		{KindGPU, nvidiatest.Blackwell, "GPU-", 1},
		{KindSwitch, nvidiatest.LS10, "SWITCH-", 2},
	} {
		t.Run(tc.kind+"/"+tc.arch, func(t *testing.T) {
			e := newEnv(t, nrastest.Options{})
			devs, _ := devices(t, tc.arch, tc.n, e.nonce)
			res, err := e.client(t, nil).Attest(context.Background(), tc.kind, e.nonce, devs)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Names) != tc.n || res.Names[0] != tc.prefix+"0" || !res.OverallResult {
				t.Fatalf("names %v overall %v", res.Names, res.OverallResult)
			}
			if err := res.CheckNonceMatch(); err != nil {
				t.Error(err)
			}
			for _, n := range res.Names {
				c := res.DeviceClaims(n)
				if c["measres"] != "success" || c["eat_nonce"] != hex.EncodeToString(e.nonce) || c[ClaimOverallResult] != true {
					t.Errorf("%s claims: %v", n, c)
				}
			}
			reqs := e.fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Path != "/v4/attest/"+tc.kind || r.ContentType != "application/json" || r.Authorization != "" ||
				r.Nonce != hex.EncodeToString(e.nonce) || r.Arch != tc.arch || r.ClaimsVersion != "3.0" || len(r.Items) != tc.n {
				t.Errorf("request %+v", r)
			}
			for i, it := range r.Items {
				rep, err := nvidia.DecodeReport(devs[i].Evidence)
				if err != nil {
					t.Fatal(err)
				}
				if it.Evidence != base64.StdEncoding.EncodeToString(rep) || it.Certificate != devs[i].Certificate {
					t.Errorf("item %d not sent as base64 evidence + certificate", i)
				}
			}
			// The JWKS is cached: a second call does not refetch it.
			if _, err := e.client(t, nil).Attest(context.Background(), tc.kind, e.nonce, devs); err != nil {
				t.Fatal(err)
			}
			if e.fake.JWKSFetches() != 2 { // two clients, one fetch each
				t.Errorf("JWKS fetches = %d", e.fake.JWKSFetches())
			}
		})
	}
}

// The fake backed by the local verifier really verifies: devices whose
// report carries the request nonce pass, one with a stale nonce yields
// nonce-match false and a failed overall result.
func TestAttestWithLocalVerifier(t *testing.T) {
	clk := &clock{t: epoch}
	nonce := make([]byte, 32)
	nonce[0] = 1
	devs, h := devices(t, nvidiatest.Hopper, 2, nonce)
	v, err := nvidia.New(nvidia.Options{Now: clk.Now, Roots: []*x509.Certificate{h.Root}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nrastest.Options{Claims: nrastest.VerifierClaims(v), Now: clk.Now})
	e.clk = clk
	c := e.client(t, nil)
	res, err := c.Attest(context.Background(), KindGPU, nonce, devs)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.CheckNonceMatch(); err != nil {
		t.Error(err)
	}
	g := res.Devices["GPU-1"]
	if g["x-nvidia-gpu-attestation-report-signature-verified"] != true || g["x-nvidia-gpu-arch-check"] != true {
		t.Errorf("GPU-1 claims %v", g)
	}
	// measres is "not-checked" without a RIM appraiser: no overall success.
	if res.OverallResult || g["measres"] != "not-checked" {
		t.Errorf("overall %v measres %v", res.OverallResult, g["measres"])
	}
	for k := range g {
		if strings.HasPrefix(k, "x-sigil-") || k == "measurements" || k == "config" {
			t.Errorf("local-only claim %s leaked", k)
		}
	}

	other := make([]byte, 32)
	other[0] = 2
	res, err = c.Attest(context.Background(), KindGPU, other, devs)
	if err != nil {
		t.Fatal(err) // the token is genuine: it records the mismatch
	}
	if err := res.CheckNonceMatch(); !errors.Is(err, ErrDeviceNonceMismatch) {
		t.Errorf("CheckNonceMatch = %v, want ErrDeviceNonceMismatch", err)
	}
}

// signedEAT builds a detached EAT from the given overall claims and device
// tokens, signed with key/kid.
func signedEAT(t *testing.T, key *ecdsa.PrivateKey, kid string, overall map[string]any, devices map[string]string) []byte {
	t.Helper()
	tok, err := nrastest.SignJWT(key, kid, overall)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal([]any{[]any{"JWT", tok}, devices})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeEAT returns a correct EAT from the fake for n GPUs and its parts.
func fakeEAT(t testing.TB, fake *nrastest.Server, nonceHex string, n int) ([]byte, map[string]any, map[string]string) {
	t.Helper()
	claims := make([]map[string]any, n)
	for i := range claims {
		c, err := nrastest.SuccessClaims(context.Background(), nrastest.Device{Kind: "gpu", Index: i})
		if err != nil {
			t.Fatal(err)
		}
		claims[i] = c
	}
	raw, err := fake.DetachedEAT("gpu", nonceHex, "3.0", claims)
	if err != nil {
		t.Fatal(err)
	}
	var top []json.RawMessage
	var head []string
	var devs map[string]string
	if json.Unmarshal(raw, &top) != nil || json.Unmarshal(top[0], &head) != nil || json.Unmarshal(top[1], &devs) != nil {
		t.Fatal("fake EAT does not decode")
	}
	d, err := parseJWT(head[1])
	if err != nil {
		t.Fatal(err)
	}
	return raw, d.claims, devs
}

func TestVerifyDetachedEATFake(t *testing.T) {
	e := newEnv(t, nrastest.Options{})
	nonceHex := hex.EncodeToString(e.nonce)
	raw, overall, devs := fakeEAT(t, e.fake, nonceHex, 2)
	keys := StaticKeys{e.fake.Kid(): e.fake.PublicKey()}
	now := epoch.Add(time.Minute)
	if _, err := VerifyDetachedEAT(raw, keys, e.nonce, e.fake.Issuer(), now); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withOverall := func(mod func(m map[string]any)) map[string]any {
		m := make(map[string]any, len(overall))
		for k, v := range overall {
			m[k] = v
		}
		mod(m)
		return m
	}
	flip := func(b []byte, at int) []byte {
		c := append([]byte(nil), b...)
		if c[at] == 'A' { // another base64url character
			c[at] = 'B'
		} else {
			c[at] = 'A'
		}
		return c
	}
	sigStart := strings.LastIndex(string(raw[:strings.Index(string(raw), "]")]), ".") + 1
	wrongDigest := withOverall(func(m map[string]any) {
		m["submods"] = map[string]any{
			"GPU-0": []any{"DIGEST", []any{"SHA-256", strings.Repeat("ab", 32)}},
			"GPU-1": overall["submods"].(map[string]any)["GPU-1"],
		}
	})
	oneSubmod := withOverall(func(m map[string]any) {
		m["submods"] = map[string]any{"GPU-0": overall["submods"].(map[string]any)["GPU-0"]}
	})
	cases := []struct {
		name  string
		raw   []byte
		keys  KeySet
		nonce []byte
		iss   string
		now   time.Time
		want  error
	}{
		{"tampered overall signature", flip(raw, sigStart+5), keys, e.nonce, e.fake.Issuer(), now, ErrSignature},
		{"tampered device signature", []byte(strings.Replace(string(raw), devs["GPU-1"], devs["GPU-1"][:len(devs["GPU-1"])-3]+"AAA", 1)), keys, e.nonce, e.fake.Issuer(), now, ErrSignature},
		{"wrong kid", raw, StaticKeys{"other": e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrUnknownKey},
		{"right kid, other key", raw, StaticKeys{e.fake.Kid(): &other.PublicKey}, e.nonce, e.fake.Issuer(), now, ErrSignature},
		{"wrong nonce", raw, keys, make([]byte, 32), e.fake.Issuer(), now, ErrNonce},
		{"no nonce", raw, keys, nil, e.fake.Issuer(), now, ErrRequest},
		{"expired", raw, keys, e.nonce, e.fake.Issuer(), epoch.Add(time.Hour + 2*time.Minute), ErrExpired},
		{"issued in the future", raw, keys, e.nonce, e.fake.Issuer(), epoch.Add(-5 * time.Minute), ErrExpired},
		{"wrong issuer", raw, keys, e.nonce, DefaultBaseURL, now, ErrIssuer},
		{"submods digest mismatch", signedEAT(t, key, "k", wrongDigest, devs), StaticKeys{"k": &key.PublicKey, e.fake.Kid(): e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrSubmods},
		{"extra device", signedEAT(t, key, "k", oneSubmod, devs), StaticKeys{"k": &key.PublicKey, e.fake.Kid(): e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrSubmods},
		{"missing device", signedEAT(t, key, "k", overall, map[string]string{"GPU-0": devs["GPU-0"]}), StaticKeys{"k": &key.PublicKey, e.fake.Kid(): e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrSubmods},
		{"no exp", signedEAT(t, key, "k", withOverall(func(m map[string]any) { delete(m, "exp") }), devs), StaticKeys{"k": &key.PublicKey, e.fake.Kid(): e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrExpired},
		{"no submods", signedEAT(t, key, "k", withOverall(func(m map[string]any) { delete(m, "submods") }), devs), StaticKeys{"k": &key.PublicKey, e.fake.Kid(): e.fake.PublicKey()}, e.nonce, e.fake.Issuer(), now, ErrSubmods},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyDetachedEAT(tc.raw, tc.keys, tc.nonce, tc.iss, tc.now)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAttestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("service key", func(t *testing.T) {
		e := newEnv(t, nrastest.Options{ServiceKey: "s3cret"})
		devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
		_, err := e.client(t, nil).Attest(ctx, KindGPU, e.nonce, devs)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || !strings.Contains(se.Message, "service key") || !errors.Is(err, ErrStatus) {
			t.Fatalf("without key: err = %v", err)
		}
		if _, err := e.client(t, func(o *Options) { o.ServiceKey = "s3cret" }).Attest(ctx, KindGPU, e.nonce, devs); err != nil {
			t.Fatal(err)
		}
		if r := e.fake.Requests(); r[len(r)-1].Authorization != "Bearer s3cret" {
			t.Errorf("Authorization = %q", r[len(r)-1].Authorization)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t, nrastest.Options{Now: func() time.Time { return epoch.Add(-2 * time.Hour) }})
		devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
		if _, err := e.client(t, nil).Attest(ctx, KindGPU, e.nonce, devs); !errors.Is(err, ErrExpired) {
			t.Fatalf("err = %v, want ErrExpired", err)
		}
	})
	t.Run("issuer", func(t *testing.T) {
		e := newEnv(t, nrastest.Options{Issuer: DefaultBaseURL})
		devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
		if _, err := e.client(t, nil).Attest(ctx, KindGPU, e.nonce, devs); !errors.Is(err, ErrIssuer) {
			t.Fatalf("err = %v, want ErrIssuer", err)
		}
		if _, err := e.client(t, func(o *Options) { o.Issuer = DefaultBaseURL }).Attest(ctx, KindGPU, e.nonce, devs); err != nil {
			t.Fatalf("configured issuer: %v", err)
		}
	})

	type ovCase struct {
		name   string
		resp   func(t *testing.T, e *env, r *nrastest.Request) (int, []byte)
		mod    func(*Options)
		want   error
		status int
		msg    string
	}
	for _, tc := range []ovCase{
		{name: "500 JSON message", resp: func(*testing.T, *env, *nrastest.Request) (int, []byte) {
			return 500, []byte(`{"message":"internal failure","request_id":"x"}`)
		}, want: ErrStatus, status: 500, msg: "internal failure"},
		{name: "400 text body", resp: func(*testing.T, *env, *nrastest.Request) (int, []byte) {
			return 400, []byte("bad\nevidence")
		}, want: ErrStatus, status: 400, msg: "bad evidence"},
		{name: "502 empty body", resp: func(*testing.T, *env, *nrastest.Request) (int, []byte) { return 502, nil }, want: ErrStatus, status: 502},
		{name: "oversized", resp: func(*testing.T, *env, *nrastest.Request) (int, []byte) {
			return 200, []byte(`[["JWT","` + strings.Repeat("a", 5000) + `"],{}]`)
		}, mod: func(o *Options) { o.MaxResponseBytes = 4096 }, want: ErrResponseTooLarge},
		{name: "wrong nonce", resp: func(t *testing.T, e *env, r *nrastest.Request) (int, []byte) {
			raw, _, _ := fakeEAT(t, e.fake, strings.Repeat("11", 32), 1)
			return 200, raw
		}, want: ErrNonce},
		{name: "fewer devices than sent", resp: func(t *testing.T, e *env, r *nrastest.Request) (int, []byte) {
			raw, _, _ := fakeEAT(t, e.fake, r.Nonce, 1)
			return 200, raw
		}, want: ErrDevices},
		{name: "malformed", resp: func(*testing.T, *env, *nrastest.Request) (int, []byte) {
			return 200, []byte(`{"GPU-0":"x"}`)
		}, want: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *env
			e = newEnv(t, nrastest.Options{Override: func(r *nrastest.Request) (int, []byte, bool) {
				s, b := tc.resp(t, e, r)
				return s, b, true
			}})
			devs, _ := devices(t, nvidiatest.Hopper, 2, e.nonce)
			_, err := e.client(t, tc.mod).Attest(ctx, KindGPU, e.nonce, devs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var se *StatusError
			if tc.status != 0 && (!errors.As(err, &se) || se.StatusCode != tc.status || se.Message != tc.msg) {
				t.Errorf("status error %+v, want %d %q", se, tc.status, tc.msg)
			}
		})
	}
	t.Run("fake rejects evidence", func(t *testing.T) {
		e := newEnv(t, nrastest.Options{Claims: func(context.Context, nrastest.Device) (map[string]any, error) {
			return nil, errors.New("invalid evidence signature")
		}})
		devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
		_, err := e.client(t, nil).Attest(ctx, KindGPU, e.nonce, devs)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 400 || se.Message != "invalid evidence signature" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		c, err := New(Options{BaseURL: srv.URL, Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		nonce := make([]byte, 32)
		devs, _ := devices(t, nvidiatest.Hopper, 1, nonce)
		_, err = c.Attest(ctx, KindGPU, nonce, devs)
		if !errors.Is(err, ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAttestRequestValidation(t *testing.T) {
	e := newEnv(t, nrastest.Options{})
	c := e.client(t, nil)
	gpus, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
	bw, _ := devices(t, nvidiatest.Blackwell, 1, e.nonce)
	sw, _ := devices(t, nvidiatest.LS10, 1, e.nonce)
	bad := gpus[0]
	bad.Evidence = "%%%"
	noCert := gpus[0]
	noCert.Certificate = ""
	for name, tc := range map[string]struct {
		kind  string
		nonce []byte
		devs  []nvidia.DeviceEvidence
	}{
		"unknown kind":       {"cpu", e.nonce, gpus},
		"short nonce":        {KindGPU, e.nonce[:31], gpus},
		"48-byte nonce":      {KindGPU, make([]byte, 48), gpus},
		"no devices":         {KindGPU, e.nonce, nil},
		"mixed arch":         {KindGPU, e.nonce, append(append([]nvidia.DeviceEvidence{}, gpus...), bw...)},
		"switch to /gpu":     {KindGPU, e.nonce, sw},
		"gpu to /switch":     {KindSwitch, e.nonce, gpus},
		"unknown arch":       {KindGPU, e.nonce, []nvidia.DeviceEvidence{{Arch: "AMPERE", Evidence: "00", Certificate: "x"}}},
		"undecodable report": {KindGPU, e.nonce, []nvidia.DeviceEvidence{bad}},
		"no certificate":     {KindGPU, e.nonce, []nvidia.DeviceEvidence{noCert}},
	} {
		if _, err := c.Attest(context.Background(), tc.kind, tc.nonce, tc.devs); !errors.Is(err, ErrRequest) {
			t.Errorf("%s: err = %v, want ErrRequest", name, err)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
	if _, err := New(Options{BaseURL: "nras.example"}); err == nil {
		t.Error("relative BaseURL accepted")
	}
}

func TestJWKSRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nrastest.Options{})
	devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
	c := e.client(t, func(o *Options) { o.JWKSMinRefresh = time.Minute })
	attest := func() error { _, err := c.Attest(ctx, KindGPU, e.nonce, devs); return err }
	if err := attest(); err != nil {
		t.Fatal(err)
	}
	if err := attest(); err != nil || e.fake.JWKSFetches() != 1 {
		t.Fatalf("cached: err %v, fetches %d", err, e.fake.JWKSFetches())
	}
	// Rotation: the new kid is unknown; the refetch is rate limited.
	if err := e.fake.RotateKey(false); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(10 * time.Second)
	if err := attest(); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within the rate limit: err = %v, want ErrUnknownKey", err)
	}
	if e.fake.JWKSFetches() != 1 {
		t.Fatalf("refetched within the rate limit: %d", e.fake.JWKSFetches())
	}
	e.clk.Add(time.Minute)
	if err := attest(); err != nil {
		t.Fatalf("after the rate limit: %v", err)
	}
	if e.fake.JWKSFetches() != 2 {
		t.Fatalf("fetches = %d, want 2", e.fake.JWKSFetches())
	}
	// Rotation keeping the old key: one refetch, then both verify.
	e.clk.Add(time.Minute)
	if err := e.fake.RotateKey(true); err != nil {
		t.Fatal(err)
	}
	if err := attest(); err != nil || e.fake.JWKSFetches() != 3 {
		t.Fatalf("keepOld: err %v, fetches %d", err, e.fake.JWKSFetches())
	}
}

func TestJWKSForms(t *testing.T) {
	for name, o := range map[string]nrastest.Options{
		"x/y only": {OmitX5C: true},
		"x5c only": {OmitXY: true},
		"both":     {},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, o)
			devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
			if _, err := e.client(t, nil).Attest(context.Background(), KindGPU, e.nonce, devs); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	xy := func(k *ecdsa.PrivateKey) (string, string) {
		b, _ := k.PublicKey.Bytes()
		return base64.RawURLEncoding.EncodeToString(b[1:49]), base64.RawURLEncoding.EncodeToString(b[49:])
	}
	x1, y1 := xy(k1)
	x2, _ := xy(k2)
	ok := `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","kid":"p","x":"","y":""},{"kty":"EC","crv":"P-384","kid":"a","x":"` + x1 + `","y":"` + y1 + `"}]}`
	keys, err := ParseJWKS([]byte(ok))
	if err != nil || len(keys) != 1 || !keys["a"].Equal(&k1.PublicKey) {
		t.Fatalf("keys %v err %v", keys, err)
	}
	for name, doc := range map[string]string{
		"not json":      `[`,
		"no keys":       `{"keys":[]}`,
		"only RSA":      `{"keys":[{"kty":"RSA","kid":"r"}]}`,
		"no kid":        `{"keys":[{"kty":"EC","crv":"P-384","x":"` + x1 + `","y":"` + y1 + `"}]}`,
		"duplicate kid": `{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x":"` + x1 + `","y":"` + y1 + `"},{"kty":"EC","crv":"P-384","kid":"a","x":"` + x1 + `","y":"` + y1 + `"}]}`,
		"off curve":     `{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x":"` + x2 + `","y":"` + y1 + `"}]}`,
		"short x":       `{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x":"AAAA","y":"` + y1 + `"}]}`,
		"bad x5c":       `{"keys":[{"kty":"EC","crv":"P-384","kid":"a","x5c":["AAAA"]}]}`,
	} {
		if _, err := ParseJWKS([]byte(doc)); !errors.Is(err, ErrJWKS) {
			t.Errorf("%s: err = %v, want ErrJWKS", name, err)
		}
	}
}

func TestJWKSMismatchedX5C(t *testing.T) {
	// A fake JWKS whose x/y come from one key and x5c from another.
	a := newEnv(t, nrastest.Options{})
	b := newEnv(t, nrastest.Options{})
	get := func(s *nrastest.Server) map[string]any {
		resp, err := s.Client().Get(s.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc["keys"].([]any)[0].(map[string]any)
	}
	ka, kb := get(a.fake), get(b.fake)
	ka["x5c"] = kb["x5c"]
	doc, _ := json.Marshal(map[string]any{"keys": []any{ka}})
	if _, err := ParseJWKS(doc); !errors.Is(err, ErrJWKS) {
		t.Errorf("err = %v, want ErrJWKS", err)
	}
}

// Concurrent first calls share one JWKS fetch and verify independently.
func TestAttestConcurrent(t *testing.T) {
	e := newEnv(t, nrastest.Options{})
	devs, _ := devices(t, nvidiatest.Hopper, 2, e.nonce)
	c := e.client(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Attest(context.Background(), KindGPU, e.nonce, devs)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := e.fake.JWKSFetches(); n != 1 {
		t.Errorf("JWKS fetched %d times", n)
	}
}

func TestOptionsURLs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nrastest.Options{})
	devs, _ := devices(t, nvidiatest.Hopper, 1, e.nonce)
	// Trustee's verifier_url form, and a trailing slash on the base.
	c := e.client(t, func(o *Options) { o.BaseURL = e.fake.URL + "/"; o.AttestURL = e.fake.URL + "/v3/attest/" })
	if _, err := c.Attest(ctx, KindGPU, e.nonce, devs); err != nil {
		t.Fatal(err)
	}
	if r := e.fake.Requests(); r[0].Path != "/v3/attest/gpu" {
		t.Errorf("path %s", r[0].Path)
	}
	// A JWKS that cannot be fetched.
	c = e.client(t, func(o *Options) { o.JWKSURL = e.fake.URL + "/v4/.well-known/jwks.json" })
	_, err := c.Attest(ctx, KindGPU, e.nonce, devs)
	var se *StatusError
	if !errors.Is(err, ErrJWKS) || !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want ErrJWKS with 404", err)
	}
	// Defaults.
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.attestURL != DefaultBaseURL+"/v4/attest" || d.keys.url != DefaultBaseURL+"/.well-known/jwks.json" || d.issuer != DefaultBaseURL {
		t.Errorf("defaults: %s %s %s", d.attestURL, d.keys.url, d.issuer)
	}
}

// One device repeated in the evidence is refused before NRAS is asked.
func TestVerifierRejectsDuplicateDevices(t *testing.T) {
	e := newEnv(t, nrastest.Options{})
	devs, _ := devices(t, nvidiatest.Hopper, 2, e.nonce)
	v := NewVerifier(e.client(t, nil), false)
	for name, list := range map[string][]nvidia.DeviceEvidence{
		"same device twice":           {devs[0], devs[1], devs[0]},
		"same device as a switch too": {devs[0], {Arch: "LS10", UUID: "s", Evidence: devs[0].Evidence, Certificate: devs[0].Certificate}},
	} {
		ev, err := json.Marshal(nvidia.Evidence{Devices: list})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), ev, verifier.Expected{ReportData: e.nonce}); !errors.Is(err, nvidia.ErrDuplicateDevice) {
			t.Errorf("%s: err = %v, want %v", name, err, nvidia.ErrDuplicateDevice)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Fatalf("NRAS asked %d times", n)
	}
	ev, _ := json.Marshal(nvidia.Evidence{Devices: devs})
	if _, err := v.Verify(context.Background(), ev, verifier.Expected{ReportData: e.nonce}); err != nil {
		t.Fatalf("distinct devices: %v", err)
	}
}
