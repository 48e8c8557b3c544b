package attestation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/rvps"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/storage/memory"
	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/sample"
	"github.com/sigil-attestation/sigil/verifier/sampledevice"
)

type fixture struct {
	svc      *attestation.Service
	policies storage.Store
	rv       *rvps.Service
}

func newService(t *testing.T, verbose bool) *fixture {
	t.Helper()
	ctx := context.Background()
	be := memory.New()
	pol, _ := be.Namespace(ctx, storage.NamespaceASPolicy)
	rvStore, _ := be.Namespace(ctx, storage.NamespaceReferenceValue)
	rv := rvps.New(rvStore, rvps.Options{})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	broker, err := ear.NewBroker(ear.BrokerConfig{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := attestation.New(ctx, attestation.Config{
		Verifiers: map[string]verifier.Verifier{"sample": sample.New(), "sampledevice": sampledevice.New()},
		Policies:  pol, ReferenceValues: rv, Broker: broker, VerboseToken: verbose,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, policies: pol, rv: rv}
}

func digest(t *testing.T, v any) []byte {
	t.Helper()
	b, err := jcs.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := sha512.Sum384(b)
	return d[:]
}

func evidence(svn string, rd []byte) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"svn": svn, "report_data": base64.StdEncoding.EncodeToString(rd)})
	return b
}

// request builds a correctly bound composite request like the KBS does.
func request(t *testing.T, withDevice bool) *attestation.Request {
	key := map[string]any{"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": "x", "y": "y"}
	device := map[string]any{"nonce": "N", "tee-pubkey": key}
	additional := ""
	if withDevice {
		ev, _ := json.Marshal(map[string]json.RawMessage{"sampledevice": evidence("2", digest(t, device))})
		additional = string(ev)
	}
	primary := map[string]any{"additional-evidence": additional, "nonce": "N", "tee-pubkey": key}
	return &attestation.Request{
		Tee: "sample", Evidence: evidence("1", digest(t, primary)), AdditionalEvidence: additional,
		RuntimeData: attestation.RuntimeData{Primary: primary, Device: device},
	}
}

func TestEvaluateComposite(t *testing.T) {
	for _, verbose := range []bool{true, false} {
		f := newService(t, verbose)
		res, err := f.svc.Evaluate(context.Background(), request(t, true))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Appraisals) != 2 || res.Appraisals[0].Name != "cpu0" || res.Appraisals[1].Name != "gpu0" {
			t.Fatalf("appraisals %+v", res.Appraisals)
		}
		cpu := res.Appraisals[0].Input
		if _, ok := cpu["sample"]; !ok || cpu["report_data"] == nil {
			t.Fatalf("cpu input %v", cpu)
		}
		rdc := cpu["runtime_data_claims"].(map[string]any)
		if _, has := rdc["additional-evidence"]; has != verbose {
			t.Fatalf("verbose=%v: runtime_data_claims %v", verbose, rdc)
		}
		if _, ok := rdc["tee-pubkey"]; !ok {
			t.Fatal("tee-pubkey missing from runtime_data_claims")
		}
		if _, ok := res.Appraisals[1].Input["sampledevice"]; !ok {
			t.Fatalf("gpu input %v", res.Appraisals[1].Input)
		}
		// Without reference values the default policies contraindicate.
		for _, a := range res.Appraisals {
			if a.Status != ear.StatusContraindicated {
				t.Fatalf("%s: %s", a.Name, a.Status)
			}
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(res.Token, ".")[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		if subs := claims["submods"].(map[string]any); len(subs) != 2 {
			t.Fatalf("token submods %v", subs)
		}
	}
}

func TestEvaluateAffirming(t *testing.T) {
	ctx := context.Background()
	f := newService(t, false)
	payload := base64.StdEncoding.EncodeToString([]byte(`{"svn":["1"],"launch_digest":["abcde"],"major_version":1,"minimum_minor_version":1,"device_svn":["2"]}`))
	if err := f.rv.Register(ctx, []byte(`{"version":"0.1.0","type":"sample","payload":"`+payload+`"}`)); err != nil {
		t.Fatal(err)
	}
	req := request(t, true)
	req.Explain = true
	res, err := f.svc.Evaluate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// The CPU is fully affirmed; the sample device's policy only vouches for
	// its hardware, so executables/configuration stay in the warning tier.
	want := map[string]ear.Status{"cpu0": ear.StatusAffirming, "gpu0": ear.StatusWarning}
	for _, a := range res.Appraisals {
		if a.Status != want[a.Name] {
			vec, _ := json.Marshal(a.TrustVector)
			t.Fatalf("%s: %s %s", a.Name, a.Status, vec)
		}
		if len(a.Explanation) == 0 {
			t.Fatalf("%s: no explanation", a.Name)
		}
	}
}

func TestEvaluateRejects(t *testing.T) {
	ctx := context.Background()
	f := newService(t, true)
	cases := []struct {
		name   string
		mutate func(r *attestation.Request)
		want   error
	}{
		{"wrong report data", func(r *attestation.Request) { r.Evidence = evidence("1", make([]byte, 48)) }, attestation.ErrEvidence},
		{"wrong device binding", func(r *attestation.Request) {
			r.AdditionalEvidence = `{"sampledevice":` + string(evidence("2", make([]byte, 48))) + `}`
			r.RuntimeData.Primary["additional-evidence"] = r.AdditionalEvidence
			r.Evidence = evidence("1", digest(t, r.RuntimeData.Primary))
		}, attestation.ErrEvidence},
		{"unknown tee", func(r *attestation.Request) { r.Tee = "tdx" }, attestation.ErrUnknownTee},
		{"unknown device tee", func(r *attestation.Request) {
			r.AdditionalEvidence = `{"quantum":{}}`
			r.RuntimeData.Primary["additional-evidence"] = r.AdditionalEvidence
			r.Evidence = evidence("1", digest(t, r.RuntimeData.Primary))
		}, attestation.ErrBadRequest},
		{"cpu tee as additional evidence", func(r *attestation.Request) {
			r.AdditionalEvidence = `{"snp":{}}`
			r.RuntimeData.Primary["additional-evidence"] = r.AdditionalEvidence
			r.Evidence = evidence("1", digest(t, r.RuntimeData.Primary))
		}, attestation.ErrBadRequest},
		{"duplicate additional evidence tee", func(r *attestation.Request) {
			r.AdditionalEvidence = `{"nvidia":{},"nvidia":{}}`
			r.RuntimeData.Primary["additional-evidence"] = r.AdditionalEvidence
			r.Evidence = evidence("1", digest(t, r.RuntimeData.Primary))
		}, attestation.ErrBadRequest},
		{"additional evidence not an object", func(r *attestation.Request) { r.AdditionalEvidence = `[1]` }, attestation.ErrBadRequest},
		{"bad hash", func(r *attestation.Request) { r.HashAlgorithm = "md5" }, attestation.ErrBadRequest},
		{"bad init-data", func(r *attestation.Request) { r.InitDataTOML = []byte("version = 1") }, attestation.ErrBadRequest},
		{"missing policy", func(r *attestation.Request) { r.PolicyIDs = []string{"nope"} }, attestation.ErrPolicyNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, false)
			c.mutate(r)
			if _, err := f.svc.Evaluate(ctx, r); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestRawRuntimeDataAndInitData(t *testing.T) {
	ctx := context.Background()
	f := newService(t, true)
	raw := []byte("raw report data, compared as-is, 48 bytes long!!")
	toml := []byte("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"aa.toml\" = '''\nx = 1\n'''\n")
	res, err := f.svc.Evaluate(ctx, &attestation.Request{
		Tee: "sample", Evidence: evidence("1", raw), RuntimeData: attestation.RuntimeData{Raw: raw}, InitDataTOML: toml,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := res.Appraisals[0].Input
	if in["runtime_data_claims"] != nil || in["init_data"] == nil {
		t.Fatalf("input %v", in)
	}
	aa := in["init_data_claims"].(map[string]any)["aa.toml"].(map[string]any)
	if len(aa) != 1 {
		t.Fatalf("aa.toml claims %v", aa)
	}
}

// TestPolicyWrittenElsewhere: a policy written to storage by another
// replica is picked up without a restart.
func TestPolicyWrittenElsewhere(t *testing.T) {
	ctx := context.Background()
	f := newService(t, true)
	if _, err := f.svc.Evaluate(ctx, request(t, false)); err != nil {
		t.Fatal(err)
	}
	affirm := "package policy\ntrust_claims := {\"hardware\": 2}\n"
	if err := f.policies.Set(ctx, "default_cpu.rego", []byte(affirm)); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Evaluate(ctx, request(t, false))
	if err != nil || res.Appraisals[0].Status != ear.StatusAffirming {
		t.Fatalf("%v %+v", err, res)
	}
	// A broken stored policy is an evaluation error, not a panic.
	_ = f.policies.Set(ctx, "default_cpu.rego", []byte("package policy\nx := {"))
	if _, err := f.svc.Evaluate(ctx, request(t, false)); err == nil {
		t.Fatal("broken policy evaluated")
	}
}

func TestSetPolicy(t *testing.T) {
	ctx := context.Background()
	f := newService(t, true)
	b64 := func(text string) string { return base64.RawURLEncoding.EncodeToString([]byte(text)) }
	good := b64("package policy\ntrust_claims := {\"hardware\": 2}\n")
	if err := f.svc.SetPolicy(ctx, "default_cpu", good); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, policy string
		reason           string // part of InvalidPolicyError.Reason
	}{
		{"bad base64", "default_cpu", "!!", "not base64url"},
		{"bad rego", "default_cpu", b64("package policy\nx := {"), "parse"},
		{"bad id", "../../etc", good, "may only contain"},
		{"empty id", "", good, "1 to 128 characters"},
		{"unknown claim", "default_cpu", b64("package policy\ntrust_claims := {\"vibes\": 2}\n"), `unknown trust claim "vibes"`},
		{"no trust_claims", "default_cpu", b64("package policy\nhardware := 2\n"), "defines no trust_claims rule"},
		{"wrong package", "default_cpu", b64("package kbs\ntrust_claims := {\"hardware\": 2}\n"), "want package policy"},
		{"http.send", "default_cpu", b64("package policy\nimport rego.v1\ntrust_claims := {\"hardware\": 2} if http.send({\"method\": \"GET\", \"url\": \"http://x/\"}).status_code == 200\n"),
			"line 3: builtin http.send is disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.svc.SetPolicy(ctx, tt.id, tt.policy)
			ipe, ok := errors.AsType[*attestation.InvalidPolicyError](err)
			if !ok || !strings.Contains(ipe.Reason, tt.reason) {
				t.Fatalf("err = %v, want an InvalidPolicyError with reason containing %q", err, tt.reason)
			}
			if !errors.Is(err, attestation.ErrBadRequest) {
				t.Errorf("%v does not match ErrBadRequest", err)
			}
		})
	}
	ids, _ := f.svc.ListPolicies(ctx)
	if strings.Join(ids, ",") != "default_cpu,default_gpu,default_ppcie,default_switch" {
		t.Fatalf("ids %v", ids)
	}
}

// TestPolicyLimits: an appraisal policy that would build a huge range fails
// the attestation quickly with policy.ErrLimitExceeded; Config.PolicyOptions
// reach the compiled policies.
func TestPolicyLimits(t *testing.T) {
	ctx := context.Background()
	f := newService(t, true)
	slow := base64.RawURLEncoding.EncodeToString([]byte("package policy\nimport rego.v1\ndefault hardware := 97\nhardware := 2 if count(numbers.range(1, 3e6)) > 0\ntrust_claims := {\"hardware\": hardware}\n"))
	if err := f.svc.SetPolicy(ctx, "default_cpu", slow); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := f.svc.Evaluate(ctx, request(t, false))
	if !errors.Is(err, policy.ErrLimitExceeded) {
		t.Fatalf("err = %v, want ErrLimitExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}

	be := memory.New()
	pol, _ := be.Namespace(ctx, storage.NamespaceASPolicy)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	broker, _ := ear.NewBroker(ear.BrokerConfig{Signer: key})
	svc, err := attestation.New(ctx, attestation.Config{
		Verifiers: map[string]verifier.Verifier{"sample": sample.New()},
		Policies:  pol, Broker: broker,
		PolicyOptions: policy.Options{AllowNetwork: true, Limits: policy.Limits{MaxSteps: 10}},
	})
	if err != nil {
		t.Fatal(err)
	}
	net := base64.RawURLEncoding.EncodeToString([]byte("package policy\nimport rego.v1\ntrust_claims := {\"hardware\": 2} if count([x | some x in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]) > 0\nx if http.send({}).status_code == 200\n"))
	if err := svc.SetPolicy(ctx, "default_cpu", net); err != nil {
		t.Fatalf("AllowNetwork: %v", err)
	}
	if _, err := svc.Evaluate(ctx, request(t, false)); !errors.Is(err, policy.ErrLimitExceeded) {
		t.Fatalf("MaxSteps 10: err = %v", err)
	}
}

// TestPolicyCacheTTL: with a cache window, a policy written by another
// replica is picked up once the window has passed; SetPolicy on this
// service applies at once.
func TestPolicyCacheTTL(t *testing.T) {
	ctx := context.Background()
	be := memory.New()
	pol, _ := be.Namespace(ctx, storage.NamespaceASPolicy)
	rvStore, _ := be.Namespace(ctx, storage.NamespaceReferenceValue)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	broker, _ := ear.NewBroker(ear.BrokerConfig{Signer: key})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc, err := attestation.New(ctx, attestation.Config{
		Verifiers: map[string]verifier.Verifier{"sample": sample.New()},
		Policies:  pol, ReferenceValues: rvps.New(rvStore, rvps.Options{}), Broker: broker,
		PolicyCacheTTL: 2 * time.Second, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	status := func() ear.Status {
		t.Helper()
		res, err := svc.Evaluate(ctx, request(t, false))
		if err != nil {
			t.Fatal(err)
		}
		return res.Appraisals[0].Status
	}
	if s := status(); s != ear.StatusContraindicated {
		t.Fatalf("default: %s", s)
	}
	_ = pol.Set(ctx, "default_cpu.rego", []byte("package policy\ntrust_claims := {\"hardware\": 2}\n"))
	if s := status(); s != ear.StatusContraindicated {
		t.Fatalf("within the window the cached policy applies, got %s", s)
	}
	now = now.Add(3 * time.Second)
	if s := status(); s != ear.StatusAffirming {
		t.Fatalf("after the window: %s", s)
	}
	warn := base64.RawURLEncoding.EncodeToString([]byte("package policy\ntrust_claims := {\"hardware\": 33}\n"))
	if err := svc.SetPolicy(ctx, "default_cpu", warn); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != ear.StatusWarning {
		t.Fatalf("local SetPolicy must apply at once: %s", s)
	}
}
