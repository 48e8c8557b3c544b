// Package attestation is Sigil's built-in Attestation Service: evidence →
// verifier (is it genuine?) → claims → Rego appraisal policy (is it
// acceptable?) → EAR token. It knows nothing of HTTP; the KBS and the
// `sigil evaluate` command both drive it through Evaluate.
package attestation

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/ear"
	"github.com/sigil-attestation/sigil/initdata"
	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/internal/strictjson"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/protocol"
	"github.com/sigil-attestation/sigil/storage"
	"github.com/sigil-attestation/sigil/verifier"
)

// DefaultPolicyID is the policy id the KBS requests; the service evaluates
// "<id>_<class>" (default_cpu, default_gpu, ...).
const DefaultPolicyID = "default"

// maxAdditionalDevices bounds the additional-evidence map of one request.
const maxAdditionalDevices = 64

// Request is one attestation to evaluate.
type Request struct {
	// Tee is the primary evidence's tee name (e.g. "tdx", "sample").
	Tee string
	// Evidence is the primary evidence JSON.
	Evidence json.RawMessage
	// AdditionalEvidence is the composite-evidence string: "" or a JSON
	// object tee name → evidence. Every entry is verified.
	AdditionalEvidence string
	// RuntimeData: at most one of Structured and Raw. Structured is hashed
	// as RFC 8785 JSON with HashAlgorithm; Raw is compared as-is.
	RuntimeData RuntimeData
	// InitData: TOML text (digest computed with its own algorithm) or a
	// precomputed digest; both nil means init-data is not checked.
	InitDataTOML   []byte
	InitDataDigest []byte
	// PolicyIDs: only the first is used; empty means "default".
	PolicyIDs []string
	// HashAlgorithm for structured runtime data: sha256, sha384 (default), sha512.
	HashAlgorithm string
	// Explain asks the policy engine to record which rule set each claim.
	Explain bool
	// AllowDevicePrimary lets a device TEE (nvidia, ...) be the primary
	// evidence. Only the offline `sigil evaluate` tool sets it, to appraise
	// a GPU report on its own; the KBS and the attestation APIs never do,
	// since a token without a CPU submodule must not unlock secrets.
	AllowDevicePrimary bool
}

// RuntimeData is the data the evidence must be bound to.
type RuntimeData struct {
	// Primary is the structured object for the primary evidence (the KBS
	// passes {"additional-evidence","nonce","tee-pubkey"}).
	Primary map[string]any
	// Device is the structured object for each additional device (the KBS
	// passes {"nonce","tee-pubkey"}); nil → Primary.
	Device map[string]any
	// Raw bytes, compared without hashing (gRPC/REST raw_runtime_data).
	Raw []byte
}

// Appraisal is the outcome for one submodule.
type Appraisal struct {
	Name        string                             `json:"name"`
	Tee         string                             `json:"tee"`
	Class       string                             `json:"class"`
	PolicyID    string                             `json:"policy_id"`
	Input       map[string]any                     `json:"input"`
	TrustVector ear.TrustVector                    `json:"trust_vector"`
	Status      ear.Status                         `json:"status"`
	Explanation map[string]policy.ClaimExplanation `json:"explanation,omitempty"`
}

// Result is the outcome of Evaluate.
type Result struct {
	Token      string      `json:"token"`
	Appraisals []Appraisal `json:"appraisals"`
}

// ReferenceValues is what the appraisal policy's query_reference_value reads.
type ReferenceValues = policy.ReferenceValues

// Config assembles a Service.
type Config struct {
	Verifiers map[string]verifier.Verifier
	// Policies is the namespace holding "<id>.rego" policies.
	Policies        storage.Store
	ReferenceValues ReferenceValues
	Broker          *ear.Broker
	// VerboseToken keeps runtime_data_claims["additional-evidence"] in the
	// token (Trustee's default is true; see docs/compatibility.md).
	VerboseToken bool
	Logger       *slog.Logger
	// PolicyCacheTTL, when positive, trusts a compiled policy for that long
	// before re-reading its text from storage. SetPolicy on this Service
	// takes effect at once; a policy written by another replica within
	// PolicyCacheTTL. Zero re-reads on every evaluation.
	PolicyCacheTTL time.Duration
	// Now is the clock for PolicyCacheTTL (default time.Now).
	Now func() time.Time
	// PolicyOptions bound every appraisal-policy evaluation (deadline, step
	// and output budgets) and say which builtins policies may call; the
	// zero value is the secure default (see policy.Options).
	PolicyOptions policy.Options
}

// Service evaluates attestation requests. It is safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	compiled sync.Map // policy id → *compiledPolicy
}

type compiledPolicy struct {
	text    string
	policy  *policy.Appraisal
	checked time.Time // when text was last compared with storage
}

// Errors a caller may want to distinguish.
var (
	ErrUnknownTee     = errors.New("no verifier for this tee")
	ErrPolicyNotFound = errors.New("attestation policy not found")
	ErrEvidence       = errors.New("evidence verification failed")
	ErrBadRequest     = errors.New("invalid attestation request")
	// ErrDevicePrimary: the primary evidence must come from a CPU TEE (the
	// TEE that holds the key resources are encrypted to); device evidence
	// belongs in additional_evidence.
	ErrDevicePrimary = errors.New("primary evidence is not from a CPU TEE")
)

// InvalidPolicyError is a policy refused by SetPolicy or SetPolicyText.
// Reason says why in words fit for the administrator who sent it (the KBS
// puts it in the problem detail). It matches ErrBadRequest.
type InvalidPolicyError struct {
	ID     string
	Reason string
}

func (e *InvalidPolicyError) Error() string {
	return fmt.Sprintf("%v: policy %q: %s", ErrBadRequest, e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrBadRequest) hold.
func (e *InvalidPolicyError) Is(target error) bool { return target == ErrBadRequest }

// cpuClass is the class of CPU TEE results (submodules cpu0, cpu1, …).
const cpuClass = "cpu"

// New creates a Service and stores the embedded default policies under ids
// that do not exist yet (existing policies are never overwritten).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Policies == nil || cfg.Broker == nil {
		return nil, errors.New("attestation: Policies and Broker are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	for id, text := range policy.DefaultAppraisalPolicies() {
		err := cfg.Policies.Create(ctx, id+".rego", []byte(text))
		if err != nil && !errors.Is(err, storage.ErrExists) {
			return nil, fmt.Errorf("attestation: storing default policy %s: %w", id, err)
		}
	}
	return s, nil
}

// SetPolicy stores policy id after checking that it compiles. policyB64 is
// the base64url (unpadded, padding tolerated) policy text, as the KBS API carries it.
func (s *Service) SetPolicy(ctx context.Context, id, policyB64 string) error {
	text, err := protocol.DecodePolicy(policyB64)
	if err != nil {
		return &InvalidPolicyError{ID: id, Reason: "policy is not base64url: " + err.Error()}
	}
	return s.SetPolicyText(ctx, id, string(text))
}

// SetPolicyText stores a policy given as Rego text after validating it
// (policy.ValidateAppraisal: it compiles, declares package policy, defines
// trust_claims with AR4SI claim names only, and calls no disabled builtin).
// A refused policy is an *InvalidPolicyError.
func (s *Service) SetPolicyText(ctx context.Context, id, text string) error {
	if err := validPolicyID(id); err != nil {
		return err
	}
	p, err := policy.ValidateAppraisal(id, text, s.cfg.PolicyOptions)
	if err != nil {
		return &InvalidPolicyError{ID: id, Reason: strings.TrimPrefix(err.Error(), "policy: ")}
	}
	if err := s.cfg.Policies.Set(ctx, id+".rego", []byte(text)); err != nil {
		return fmt.Errorf("attestation: storing policy %s: %w", id, err)
	}
	s.compiled.Store(id, &compiledPolicy{text: text, policy: p, checked: s.cfg.Now()})
	return nil
}

// ListPolicies returns the stored policy ids.
func (s *Service) ListPolicies(ctx context.Context) ([]string, error) {
	keys, err := s.cfg.Policies.List(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, strings.TrimSuffix(k, ".rego"))
	}
	slices.Sort(ids)
	return ids, nil
}

func validPolicyID(id string) error {
	if id == "" || len(id) > 128 {
		return &InvalidPolicyError{ID: id, Reason: "policy id must be 1 to 128 characters"}
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return &InvalidPolicyError{ID: id, Reason: "policy id may only contain [A-Za-z0-9_.-]"}
		}
	}
	return nil
}

// InvalidatePolicy makes the next evaluation re-read policy id from storage
// (every policy when id is ""), recompiling it only if its text changed:
// another replica set it. Without a call, such a change is seen within
// PolicyCacheTTL.
func (s *Service) InvalidatePolicy(id string) {
	s.compiled.Range(func(k, v any) bool {
		if c, ok := v.(*compiledPolicy); ok && (id == "" || k == id) {
			s.compiled.Store(k, &compiledPolicy{text: c.text, policy: c.policy})
		}
		return true
	})
}

// policyFor returns the compiled policy id, recompiling when the stored text
// changed (another replica may have written it).
func (s *Service) policyFor(ctx context.Context, id string) (*policy.Appraisal, error) {
	now := s.cfg.Now()
	cached, _ := s.compiled.Load(id)
	if c, ok := cached.(*compiledPolicy); ok && s.cfg.PolicyCacheTTL > 0 {
		if age := now.Sub(c.checked); age >= 0 && age < s.cfg.PolicyCacheTTL {
			return c.policy, nil
		}
	}
	text, err := s.cfg.Policies.Get(ctx, id+".rego")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrPolicyNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("attestation: loading policy %s: %w", id, err)
	}
	if c, ok := cached.(*compiledPolicy); ok && c.text == string(text) {
		s.compiled.Store(id, &compiledPolicy{text: c.text, policy: c.policy, checked: now})
		return c.policy, nil
	}
	p, err := policy.CompileAppraisalWith(id, string(text), s.cfg.PolicyOptions)
	if err != nil {
		return nil, fmt.Errorf("attestation: stored policy %s does not compile: %w", id, err)
	}
	s.compiled.Store(id, &compiledPolicy{text: string(text), policy: p, checked: now})
	return p, nil
}

// unit is one piece of evidence to verify.
type unit struct {
	tee      string
	evidence []byte
	rd       map[string]any // structured runtime data, nil if raw/none
	expected verifier.Expected
	primary  bool // the primary evidence: it must come from a CPU TEE
}

// Evaluate verifies all evidence of req, appraises each result with its
// class policy and issues one EAR token with a submodule per result.
func (s *Service) Evaluate(ctx context.Context, req *Request) (*Result, error) {
	units, doc, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	policyID := DefaultPolicyID
	if len(req.PolicyIDs) > 0 && req.PolicyIDs[0] != "" {
		policyID = req.PolicyIDs[0]
	}
	counters := map[string]int{}
	var appraisals []Appraisal
	submods := map[string]ear.Submod{}
	for _, u := range units {
		v, ok := s.cfg.Verifiers[u.tee]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnknownTee, u.tee)
		}
		results, err := v.Verify(ctx, u.evidence, u.expected)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrEvidence, u.tee, err)
		}
		for _, r := range results {
			if u.primary && r.Class != cpuClass {
				return nil, fmt.Errorf("%w: %s evidence produced class %q", ErrDevicePrimary, u.tee, r.Class)
			}
			input := s.transformClaims(u, r.Claims, doc)
			id := policyID + "_" + r.Class
			p, err := s.policyFor(ctx, id)
			if err != nil {
				return nil, err
			}
			out, err := p.Evaluate(ctx, input, s.cfg.ReferenceValues, req.Explain)
			if err != nil {
				return nil, fmt.Errorf("attestation: policy %s: %w", id, err)
			}
			name := fmt.Sprintf("%s%d", r.Class, counters[r.Class])
			counters[r.Class]++
			exts := map[string]any{}
			for _, e := range out.Extensions {
				exts[e.Name] = e.Value
			}
			status := out.TrustVector.Status()
			submods[name] = ear.Submod{
				Status:            status,
				TrustVector:       out.TrustVector,
				PolicyID:          policyID,
				AnnotatedEvidence: s.tokenEvidence(input, u.tee, r.RawClaims),
				Extensions:        exts,
			}
			appraisals = append(appraisals, Appraisal{
				Name: name, Tee: u.tee, Class: r.Class, PolicyID: id, Input: input,
				TrustVector: out.TrustVector, Status: status, Explanation: out.Explanation,
			})
		}
	}
	token, err := s.cfg.Broker.Issue(submods)
	if err != nil {
		return nil, fmt.Errorf("attestation: issuing token: %w", err)
	}
	return &Result{Token: token, Appraisals: appraisals}, nil
}

// prepare computes the expected binding values and splits composite evidence.
func (s *Service) prepare(req *Request) ([]unit, *initdata.Document, error) {
	if req.Tee == "" {
		return nil, nil, fmt.Errorf("%w: tee is empty", ErrBadRequest)
	}
	h, err := newHash(req.HashAlgorithm)
	if err != nil {
		return nil, nil, err
	}
	var exp verifier.Expected
	var doc *initdata.Document
	switch {
	case req.InitDataTOML != nil:
		doc, err = initdata.Parse(req.InitDataTOML)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: init-data: %v", ErrBadRequest, err)
		}
		exp.InitDataDigest, err = initdata.Digest(doc.Algorithm, req.InitDataTOML)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: init-data: %v", ErrBadRequest, err)
		}
	case req.InitDataDigest != nil:
		exp.InitDataDigest = req.InitDataDigest
	}
	if protocol.IsDeviceTee(req.Tee) && !req.AllowDevicePrimary {
		return nil, nil, fmt.Errorf("%w: %s", ErrDevicePrimary, req.Tee)
	}
	primary := unit{tee: req.Tee, evidence: req.Evidence, expected: exp, primary: !req.AllowDevicePrimary}
	var deviceDigest []byte
	switch rd := req.RuntimeData; {
	case rd.Raw != nil:
		primary.expected.ReportData = rd.Raw
		deviceDigest = rd.Raw
	case rd.Primary != nil:
		primary.rd = rd.Primary
		if primary.expected.ReportData, err = digestJSON(h, rd.Primary); err != nil {
			return nil, nil, err
		}
		deviceDigest = primary.expected.ReportData
		if rd.Device != nil {
			if deviceDigest, err = digestJSON(h, rd.Device); err != nil {
				return nil, nil, err
			}
		}
	}
	units := []unit{primary}
	if req.AdditionalEvidence != "" {
		// Strict: with a duplicated tee key encoding/json would keep only
		// the last entry, and the earlier evidence would go unverified.
		var extra map[string]json.RawMessage
		if err := strictjson.Unmarshal([]byte(req.AdditionalEvidence), &extra); err != nil {
			return nil, nil, fmt.Errorf("%w: additional_evidence is not a JSON object: %v", ErrBadRequest, err)
		}
		if len(extra) > maxAdditionalDevices {
			return nil, nil, fmt.Errorf("%w: more than %d additional evidence entries", ErrBadRequest, maxAdditionalDevices)
		}
		tees := make([]string, 0, len(extra))
		for tee := range extra {
			if !protocol.IsDeviceTee(tee) {
				return nil, nil, fmt.Errorf("%w: additional_evidence holds %q, which is not a device TEE", ErrBadRequest, tee)
			}
			tees = append(tees, tee)
		}
		slices.Sort(tees)
		deviceRD := req.RuntimeData.Device
		if deviceRD == nil {
			deviceRD = req.RuntimeData.Primary
		}
		for _, tee := range tees {
			u := unit{tee: tee, evidence: extra[tee], rd: deviceRD, expected: exp}
			u.expected.ReportData = deviceDigest
			units = append(units, u)
		}
	}
	return units, doc, nil
}

// transformClaims builds the policy input (Trustee's transform_claims): the
// verifier's report_data / init_data claims are hoisted to the top level with
// their structured forms, everything else goes under the tee name.
func (s *Service) transformClaims(u unit, claims map[string]any, doc *initdata.Document) map[string]any {
	input := make(map[string]any, 5)
	rest := make(map[string]any, len(claims))
	for k, v := range claims {
		rest[k] = v
	}
	if v, ok := rest["init_data"]; ok {
		delete(rest, "init_data")
		input["init_data"] = v
		if doc != nil {
			input["init_data_claims"] = doc.Claims()
		} else {
			input["init_data_claims"] = nil
		}
	}
	if v, ok := rest["report_data"]; ok {
		delete(rest, "report_data")
		input["report_data"] = v
		if u.rd != nil {
			rd := make(map[string]any, len(u.rd))
			for k, v := range u.rd {
				if k == "additional-evidence" && !s.cfg.VerboseToken {
					continue
				}
				rd[k] = v
			}
			input["runtime_data_claims"] = rd
		} else {
			input["runtime_data_claims"] = nil
		}
	}
	input[u.tee] = rest
	return input
}

// tokenEvidence is the annotated evidence put in the token: the policy
// input without the claims that echo raw evidence, unless verbose_token.
func (s *Service) tokenEvidence(input map[string]any, tee string, raw []string) map[string]any {
	claims, ok := input[tee].(map[string]any)
	if s.cfg.VerboseToken || len(raw) == 0 || !ok {
		return input
	}
	out := make(map[string]any, len(input))
	for k, v := range input {
		out[k] = v
	}
	trimmed := make(map[string]any, len(claims))
	for k, v := range claims {
		trimmed[k] = v
	}
	for _, k := range raw {
		delete(trimmed, k)
	}
	out[tee] = trimmed
	return out
}

func newHash(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "", "sha384":
		return sha512.New384, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: unsupported runtime data hash algorithm %q", ErrBadRequest, name)
}

func digestJSON(h func() hash.Hash, v any) ([]byte, error) {
	b, err := jcs.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: runtime data: %v", ErrBadRequest, err)
	}
	d := h()
	d.Write(b)
	return d.Sum(nil), nil
}
