package nras

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	realNonce      = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
	prodIssuer     = "https://nras.attestation.nvidia.com"
	stgIssuer      = "https://nras.attestation-stg.nvidia.com"
	hopperIAT      = 1749601858 // 2025-06-11T00:30:58Z
	switchIAT      = 1751155060 // 2025-06-28T23:57:40Z
	hopperKid      = "nv-eat-kid-prod-20250609211310110-93b13aa1-17e4-4c14-9d33-dba2323329f2"
	hopperDigest   = "d7c2a949a5c69bff1a12de3da0c9a23bc966041b811b99a89dfe44c2dde8c37c"
	hopperLeafUEID = "478176379286082186618948445787393647364802107249"
	switchLeafUEID = "694931143880983876767046803400974855445978836716"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodedClaims reads an NVAT *_decoded.json with numbers as json.Number.
func decodedClaims(t *testing.T, name string) map[string]map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, name)))
	dec.UseNumber()
	var m map[string]map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func realChecks(nonce, issuer string, iat int64, offset time.Duration) checks {
	return checks{nonceHex: nonce, issuer: issuer, now: time.Unix(iat, 0).Add(offset), leeway: DefaultLeeway}
}

// The signing JWKS of the real tokens is not available, so the real vectors
// are checked by parseDetachedEAT + checkClaims (everything but the ES384
// signatures, which the fake's tests cover).
func TestRealHopperEAT(t *testing.T) {
	raw := readFile(t, "hopperClaimsv3_detached_eat.json")
	d, err := parseDetachedEAT(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.kids(); len(got) != 1 || got[0] != hopperKid {
		t.Errorf("kids = %v", got)
	}
	sum := sha256.Sum256([]byte(d.devices["GPU-0"].raw))
	if hex.EncodeToString(sum[:]) != hopperDigest {
		t.Errorf("SHA-256(GPU-0 JWT) = %x", sum)
	}
	res, err := d.checkClaims(realChecks(realNonce, prodIssuer, hopperIAT, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OverallResult || !reflect.DeepEqual(res.Names, []string{"GPU-0"}) {
		t.Errorf("overall %v names %v", res.OverallResult, res.Names)
	}
	if !res.Expires.Equal(time.Unix(hopperIAT+3600, 0)) {
		t.Errorf("expires %v", res.Expires)
	}
	want := decodedClaims(t, "hopperClaimsv3_decoded.json")
	if !reflect.DeepEqual(res.Devices, want) {
		t.Errorf("device claims differ from hopperClaimsv3_decoded.json:\n got %v\nwant %v", res.Devices, want)
	}
	gpu := res.Devices["GPU-0"]
	for k, v := range map[string]any{
		"ueid": hopperLeafUEID, "measres": "success", "x-nvidia-gpu-vbios-version": "96.00.9F.00.01",
		"eat_nonce": realNonce, "x-nvidia-gpu-attestation-report-nonce-match": true,
	} {
		if gpu[k] != v {
			t.Errorf("%s = %v, want %v", k, gpu[k], v)
		}
	}
	if err := res.CheckNonceMatch(); err != nil {
		t.Error(err)
	}
	dc := res.DeviceClaims("GPU-0")
	if dc[ClaimOverallResult] != true || len(dc) != len(gpu)+1 {
		t.Errorf("DeviceClaims: overall %v, %d claims", dc[ClaimOverallResult], len(dc))
	}
	if vr := res.Results(); len(vr) != 1 || vr[0].Class != "gpu" || vr[0].Claims["ueid"] != hopperLeafUEID || vr[0].Claims[ClaimOverallResult] != true {
		t.Errorf("Results() = %v", vr)
	}
	if _, had := gpu[ClaimOverallResult]; had {
		t.Error("DeviceClaims modified the device claims")
	}
	// Upper-case nonce: hex compares case-insensitively.
	if _, err := d.checkClaims(realChecks(strings.ToUpper(realNonce), prodIssuer, hopperIAT, 0)); err != nil {
		t.Errorf("upper-case nonce: %v", err)
	}
}

func TestRealSwitchEAT(t *testing.T) {
	d, err := parseDetachedEAT(readFile(t, "switch_detached_eat.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Pinned to production, the staging token is rejected.
	if _, err := d.checkClaims(realChecks(realNonce, prodIssuer, switchIAT, time.Minute)); !errors.Is(err, ErrIssuer) {
		t.Errorf("prod issuer: err = %v, want ErrIssuer", err)
	}
	res, err := d.checkClaims(realChecks(realNonce, stgIssuer, switchIAT, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := decodedClaims(t, "switch_decoded.json")
	if !reflect.DeepEqual(res.Devices, want) {
		t.Errorf("device claims differ from switch_decoded.json")
	}
	if res.Devices["SWITCH-0"]["ueid"] != switchLeafUEID || !res.OverallResult {
		t.Errorf("ueid %v overall %v", res.Devices["SWITCH-0"]["ueid"], res.OverallResult)
	}
	if err := res.CheckNonceMatch(); err != nil {
		t.Error(err)
	}
	if vr := res.Results(); len(vr) != 1 || vr[0].Class != "switch" {
		t.Errorf("Results() = %v", vr)
	}
	sum := sha256.Sum256([]byte(d.devices["SWITCH-0"].raw))
	if !strings.HasPrefix(hex.EncodeToString(sum[:]), "17f84b70") {
		t.Errorf("SHA-256(SWITCH-0 JWT) = %x", sum)
	}
}

func TestRealEATNegative(t *testing.T) {
	raw := readFile(t, "hopperClaimsv3_detached_eat.json")
	var top []json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	var head []string
	var devs map[string]string
	_ = json.Unmarshal(top[0], &head)
	_ = json.Unmarshal(top[1], &devs)
	build := func(overall string, devices map[string]string) []byte {
		b, err := json.Marshal([]any{[]string{"JWT", overall}, devices})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gpu := devs["GPU-0"]
	// Changing one signature character keeps the JWT well-formed but
	// changes its digest.
	last := gpu[len(gpu)-2:]
	alt := "A"
	if last[0] == 'A' {
		alt = "B"
	}
	tamperedGPU := gpu[:len(gpu)-2] + alt + last[1:]

	cases := []struct {
		name  string
		raw   []byte
		check checks
		want  error
	}{
		{"wrong nonce", raw, realChecks(strings.Repeat("00", 32), prodIssuer, hopperIAT, 0), ErrNonce},
		{"expired", raw, realChecks(realNonce, prodIssuer, hopperIAT, time.Hour+2*time.Minute), ErrExpired},
		{"not yet valid", raw, realChecks(realNonce, prodIssuer, hopperIAT, -2*time.Minute), ErrExpired},
		{"within leeway after exp", raw, realChecks(realNonce, prodIssuer, hopperIAT, time.Hour+30*time.Second), nil},
		{"wrong issuer", raw, realChecks(realNonce, stgIssuer, hopperIAT, 0), ErrIssuer},
		{"device token changed", build(head[1], map[string]string{"GPU-0": tamperedGPU}), realChecks(realNonce, prodIssuer, hopperIAT, 0), ErrSubmods},
		{"device missing", build(head[1], map[string]string{}), realChecks(realNonce, prodIssuer, hopperIAT, 0), ErrSubmods},
		{"extra device", build(head[1], map[string]string{"GPU-0": gpu, "GPU-1": gpu}), realChecks(realNonce, prodIssuer, hopperIAT, 0), ErrSubmods},
		{"device renamed", build(head[1], map[string]string{"GPU-1": gpu}), realChecks(realNonce, prodIssuer, hopperIAT, 0), ErrSubmods},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseDetachedEAT(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.checkClaims(tc.check)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// Signatures: the real JWKS is unavailable, so the kid is unknown; a
	// foreign key under the real kid does not verify.
	now := time.Unix(hopperIAT, 0)
	nonce := mustHex(t, realNonce)
	if _, err := VerifyDetachedEAT(raw, StaticKeys{}, nonce, prodIssuer, now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no keys: err = %v, want ErrUnknownKey", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDetachedEAT(raw, StaticKeys{hopperKid: &k.PublicKey}, nonce, prodIssuer, now); !errors.Is(err, ErrSignature) {
		t.Errorf("foreign key: err = %v, want ErrSignature", err)
	}
}

func TestParseMalformed(t *testing.T) {
	good := readFile(t, "hopperClaimsv3_detached_eat.json")
	for name, in := range map[string]string{
		"not json":           "nope",
		"object":             `{}`,
		"one element":        `[["JWT","a.b.c"]]`,
		"three elements":     `[["JWT","a.b.c"],{},{}]`,
		"no JWT tag":         `[["JWS","a.b.c"],{}]`,
		"null devices":       `[["JWT","a.b.c"],null]`,
		"bad overall":        `[["JWT","a.b"],{}]`,
		"trailing data":      string(good) + "[]",
		"non-string device":  `[["JWT","a.b.c"],{"GPU-0":1}]`,
		"std base64 header":  `[["JWT","eyJ+.e30.AA"],{}]`,
		"alg none":           `[["JWT","eyJhbGciOiJub25lIiwia2lkIjoiayJ9.e30."],{}]`,
		"alg HS256":          `[["JWT","eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ.e30.AA"],{}]`,
		"no kid":             `[["JWT","eyJhbGciOiJFUzM4NCJ9.e30.AA"],{}]`,
		"payload not object": `[["JWT","eyJhbGciOiJFUzM4NCIsImtpZCI6ImsifQ.WzFd.AA"],{}]`,
	} {
		if _, err := parseDetachedEAT([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrAlgorithm) && !errors.Is(err, ErrSignature) {
			t.Errorf("%s: err = %v, not a sentinel", name, err)
		}
	}
}
