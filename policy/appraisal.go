package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/sigil-attestation/sigil/ear"
)

// ReferenceValues resolves query_reference_value(id). A nil value with a nil
// error means the id is absent, which the policy sees as null.
// Implementations must honour ctx cancellation: lookups are given a 10 s
// deadline.
type ReferenceValues interface {
	Query(ctx context.Context, id string) (json.RawMessage, error)
}

// RVLookupTimeout bounds one query_reference_value lookup.
const RVLookupTimeout = 10 * time.Second

// BuiltinQueryReferenceValue is the name of the custom Rego builtin.
const BuiltinQueryReferenceValue = "query_reference_value"

// Extension is one entry of data.policy.extensions, added to the EAR submod
// under Name.
type Extension struct {
	Name  string `json:"name"`
	Key   int32  `json:"key"`
	Value any    `json:"value"`
}

// ClaimExplanation says which rule gave a trust claim its value.
type ClaimExplanation struct {
	Value int8 `json:"value"`
	// Rule is the head of the rule that produced the value (for example
	// "hardware := 2"), or "default" when the claim kept its default.
	Rule string `json:"rule"`
	// Location is "file:row" of that rule, when known.
	Location string `json:"location,omitempty"`
}

// Outcome is the result of an appraisal.
type Outcome struct {
	TrustVector ear.TrustVector
	Extensions  []Extension
	// Explanation is set only when Evaluate was asked to explain; it is
	// keyed by trust-claim name.
	Explanation map[string]ClaimExplanation
}

// ExtensionMap returns the extensions keyed by name, as ear.Submod wants them.
func (o *Outcome) ExtensionMap() map[string]any {
	if len(o.Extensions) == 0 {
		return nil
	}
	m := make(map[string]any, len(o.Extensions))
	for _, e := range o.Extensions {
		m[e.Name] = e.Value
	}
	return m
}

// Appraisal is a compiled attestation-service policy. It is safe for
// concurrent use.
type Appraisal struct {
	id        string
	pq        rego.PreparedEvalQuery
	claimRefs map[string]ast.Ref // trust claim -> rule producing it (for explanations)
	rvTimeout time.Duration
	limits    Limits
}

const appraisalQuery = `tc := [x | x := data.policy.trust_claims]; ext := [y | y := data.policy.extensions]`

type rvContextKey struct{}

// CompileAppraisal compiles an appraisal policy with the default Options.
// id names the policy in errors and explanations (for example
// "default_cpu").
func CompileAppraisal(id, text string) (*Appraisal, error) {
	return CompileAppraisalWith(id, text, Options{})
}

// CompileAppraisalWith compiles an appraisal policy: it must declare package
// policy, may only call the builtins o allows, and the trust claims its
// trust_claims rules name literally must be AR4SI claims. Evaluations are
// bounded by o.Limits. A policy without trust_claims compiles (every claim
// is then 0, as in Trustee); ValidateAppraisal refuses it.
func CompileAppraisalWith(id, text string, o Options) (*Appraisal, error) {
	return compileAppraisal(id, text, o, checkTrustClaims)
}

// ValidateAppraisal compiles a newly uploaded appraisal policy as
// CompileAppraisalWith does and also requires a trust_claims rule. The error
// says why a policy is refused, in words fit for the administrator.
func ValidateAppraisal(id, text string, o Options) (*Appraisal, error) {
	return compileAppraisal(id, text, o, func(m *ast.Module) error {
		if err := requireRule(m, "trust_claims", "the attestation service reads data.policy.trust_claims"); err != nil {
			return err
		}
		return checkTrustClaims(m)
	})
}

func compileAppraisal(id, text string, o Options, check func(*ast.Module) error) (*Appraisal, error) {
	p := &Appraisal{id: id, rvTimeout: RVLookupTimeout, limits: o.Limits.withDefaults()}
	pq, mod, err := prepare(id+".rego", text, o, check,
		rego.Query(appraisalQuery),
		rego.Function1(&rego.Function{
			Name:    BuiltinQueryReferenceValue,
			Decl:    types.NewFunction(types.Args(types.Named("id", types.S)), types.A),
			Memoize: true,
		}, p.queryReferenceValue),
	)
	if err != nil {
		return nil, err
	}
	p.pq = pq
	p.claimRefs = trustClaimRefs(mod)
	return p, nil
}

// ID returns the policy id given to CompileAppraisal.
func (p *Appraisal) ID() string { return p.id }

// queryReferenceValue implements query_reference_value(id).
func (p *Appraisal) queryReferenceValue(bctx rego.BuiltinContext, idTerm *ast.Term) (*ast.Term, error) {
	id, ok := idTerm.Value.(ast.String)
	if !ok {
		return nil, rego.NewHaltError(fmt.Errorf("%s: id must be a string, got %v", BuiltinQueryReferenceValue, ast.ValueName(idTerm.Value)))
	}
	rv, _ := bctx.Context.Value(rvContextKey{}).(ReferenceValues)
	if rv == nil {
		return ast.NullTerm(), nil
	}
	ctx, cancel := context.WithTimeout(bctx.Context, p.rvTimeout)
	defer cancel()
	raw, err := rv.Query(ctx, string(id))
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, rego.NewHaltError(fmt.Errorf("%s(%q): %w", BuiltinQueryReferenceValue, string(id), err))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return ast.NullTerm(), nil
	}
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, rego.NewHaltError(fmt.Errorf("%s(%q): reference value is not JSON: %w", BuiltinQueryReferenceValue, string(id), err))
	}
	return ast.NewTerm(v), nil
}

// Evaluate runs the policy on input (the transformed claims). rv may be nil,
// in which case every reference value is null. With explain set, the outcome
// says which rule set each trust claim.
func (p *Appraisal) Evaluate(ctx context.Context, input map[string]any, rv ReferenceValues, explain bool) (*Outcome, error) {
	val, err := ast.InterfaceToValue(input)
	if err != nil {
		return nil, fmt.Errorf("policy %s: input: %w", p.id, err)
	}
	return p.EvaluateValue(ctx, val, rv, explain)
}

// EvaluateValue is Evaluate for an input already converted to a Rego value
// (for callers that evaluate the same input more than once).
func (p *Appraisal) EvaluateValue(ctx context.Context, input ast.Value, rv ReferenceValues, explain bool) (*Outcome, error) {
	if rv != nil {
		ctx = context.WithValue(ctx, rvContextKey{}, rv)
	}
	var tracer *topdown.BufferTracer
	var rs rego.ResultSet
	err := evaluation(ctx, p.limits, func(ctx context.Context, b *budget) error {
		opts := []rego.EvalOption{rego.EvalParsedInput(input), rego.EvalExternalCancel(b), resultJSON(p.limits.MaxOutputBytes)}
		if explain {
			tracer = topdown.NewBufferTracer()
			opts = append(opts, rego.EvalQueryTracer(tracer))
		}
		var err error
		rs, err = p.pq.Eval(ctx, opts...)
		return err
	})
	if err != nil {
		return nil, evalError(fmt.Sprintf("policy %s: evaluate: ", p.id), err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("policy %s: %w", p.id, errUndefined)
	}
	out := &Outcome{}
	if err := parseTrustClaims(rs[0].Bindings["tc"], &out.TrustVector); err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.id, err)
	}
	if out.Extensions, err = parseExtensions(rs[0].Bindings["ext"]); err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.id, err)
	}
	if explain {
		out.Explanation = p.explain(*tracer, out.TrustVector)
	}
	return out, nil
}

// parseTrustClaims fills v from the [trust_claims] binding: an empty list
// means the rule is missing, and every claim is then set to 0.
func parseTrustClaims(b any, v *ear.TrustVector) error {
	list, _ := b.([]any)
	if len(list) == 0 {
		for _, n := range ear.ClaimNames() {
			if err := v.Set(n, 0); err != nil {
				return err
			}
		}
		return nil
	}
	obj, ok := list[0].(map[string]any)
	if !ok {
		return fmt.Errorf("trust_claims must be an object, got %T", list[0])
	}
	if len(obj) == 0 {
		return errors.New("trust_claims sets no trust claim")
	}
	for name, raw := range obj {
		if !ear.IsClaimName(name) {
			return fmt.Errorf("trust_claims: unknown trust claim %q", name)
		}
		n, err := intValue(raw, math.MinInt8, math.MaxInt8)
		if err != nil {
			return fmt.Errorf("trust_claims: claim %q: %w", name, err)
		}
		if err := v.Set(name, int(n)); err != nil {
			return err
		}
	}
	return nil
}

func intValue(raw any, lo, hi int64) (int64, error) {
	num, ok := raw.(json.Number)
	if !ok {
		return 0, fmt.Errorf("value %v is not an integer", raw)
	}
	n, err := num.Int64()
	if err != nil {
		return 0, fmt.Errorf("value %s is not an integer", num)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("value %d out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// parseExtensions reads the [extensions] binding.
func parseExtensions(b any) ([]Extension, error) {
	list, _ := b.([]any)
	if len(list) == 0 {
		return nil, nil
	}
	items, ok := list[0].([]any)
	if !ok {
		return nil, fmt.Errorf("extensions must be an array, got %T", list[0])
	}
	var out []Extension
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("extensions[%d] must be an object", i)
		}
		name, ok := obj["name"].(string)
		if !ok || name == "" {
			return nil, fmt.Errorf("extensions[%d]: name must be a non-empty string", i)
		}
		key, err := intValue(obj["key"], math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, fmt.Errorf("extensions[%d] (%s): key: %w", i, name, err)
		}
		v, present := obj["value"]
		if !present || v == nil {
			continue
		}
		out = append(out, Extension{Name: name, Key: int32(key), Value: normalizeNumbers(v)})
	}
	return out, nil
}

// normalizeNumbers turns json.Number leaves into int64 (or float64) so that
// extension values encode like ordinary Go values.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case []any:
		for i := range t {
			t[i] = normalizeNumbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = normalizeNumbers(t[k])
		}
	}
	return v
}
