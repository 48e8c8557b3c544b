package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ResourceData is the request description a resource policy sees as its
// data document: {"plugin": …, "resource-path": […], "query": {…}}.
type ResourceData struct {
	Plugin       string
	ResourcePath []string
	Query        map[string]string
}

func (d ResourceData) value() ast.Value {
	path := make([]*ast.Term, len(d.ResourcePath))
	for i, s := range d.ResourcePath {
		path[i] = ast.StringTerm(s)
	}
	q := make([][2]*ast.Term, 0, len(d.Query))
	for k, v := range d.Query {
		q = append(q, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	return ast.NewObject(
		[2]*ast.Term{ast.StringTerm("plugin"), ast.StringTerm(d.Plugin)},
		[2]*ast.Term{ast.StringTerm("resource-path"), ast.ArrayTerm(path...)},
		[2]*ast.Term{ast.StringTerm("query"), ast.NewTerm(ast.NewObject(q...))},
	)
}

// Resource is a compiled KBS resource policy. It is safe for concurrent use.
//
// The request-specific data document is not written to a store: the
// prepared query receives {"c": claims, "d": data} as its input and replaces
// input and the three data members with "with" modifiers, so evaluation
// takes no lock and writes nothing.
type Resource struct {
	pq     rego.PreparedEvalQuery
	limits Limits
}

// resourceQuery compares allow with true, so that the result is a boolean
// whatever the policy computes (a non-boolean allow is a denial).
const resourceQuery = `allow := data.policy.allow == true ` +
	`with input as input.c ` +
	`with data.plugin as input.d.plugin ` +
	`with data["resource-path"] as input.d["resource-path"] ` +
	`with data.query as input.d.query`

// CompileResource compiles a resource policy with the default Options.
func CompileResource(text string) (*Resource, error) {
	return CompileResourceWith(text, Options{})
}

// CompileResourceWith compiles a resource policy: it must declare package
// policy and define the rule allow, and may only call the builtins o
// allows. Evaluations are bounded by o.Limits.
func CompileResourceWith(text string, o Options) (*Resource, error) {
	check := func(m *ast.Module) error {
		return requireRule(m, "allow", "the KBS reads data.policy.allow")
	}
	pq, _, err := prepare("resource-policy.rego", text, o, check, rego.Query(resourceQuery))
	if err != nil {
		return nil, err
	}
	return &Resource{pq: pq, limits: o.Limits.withDefaults()}, nil
}

// Allow evaluates the policy with claims (the verified token claims: decoded
// JSON, or an ast.Value) as input. An undefined or non-boolean allow is a
// denial.
func (p *Resource) Allow(ctx context.Context, claims any, d ResourceData) (bool, error) {
	in, err := resourceInput(claims, d)
	if err != nil {
		return false, err
	}
	var rs rego.ResultSet
	err = evaluation(ctx, p.limits, func(ctx context.Context, b *budget) error {
		var err error
		rs, err = p.pq.Eval(ctx, rego.EvalParsedInput(in), rego.EvalExternalCancel(b))
		return err
	})
	if err != nil {
		return false, evalError("policy: resource policy: ", err)
	}
	if len(rs) != 1 {
		return false, nil
	}
	allow, ok := rs[0].Bindings["allow"].(bool)
	return ok && allow, nil
}

// resourceInput builds the prepared query's input {"c": claims, "d": data}.
func resourceInput(claims any, d ResourceData) (ast.Value, error) {
	var cv ast.Value
	switch c := claims.(type) {
	case ast.Value:
		cv = c
	case nil:
		cv = ast.Null{}
	default:
		var err error
		if cv, err = ast.InterfaceToValue(c); err != nil {
			return nil, fmt.Errorf("policy: resource input: %w", err)
		}
	}
	return ast.NewObject(
		[2]*ast.Term{ast.StringTerm("c"), ast.NewTerm(cv)},
		[2]*ast.Term{ast.StringTerm("d"), ast.NewTerm(d.value())},
	), nil
}
