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
	pq rego.PreparedEvalQuery
}

const resourceQuery = `allow := data.policy.allow ` +
	`with input as input.c ` +
	`with data.plugin as input.d.plugin ` +
	`with data["resource-path"] as input.d["resource-path"] ` +
	`with data.query as input.d.query`

// CompileResource compiles a resource policy (rule data.policy.allow).
func CompileResource(text string) (*Resource, error) {
	pq, _, err := prepare("resource-policy.rego", text, rego.Query(resourceQuery))
	if err != nil {
		return nil, err
	}
	return &Resource{pq: pq}, nil
}

// Allow evaluates the policy with claims (the verified token claims: decoded
// JSON, or an ast.Value) as input. An undefined or non-boolean allow is a
// denial.
func (p *Resource) Allow(ctx context.Context, claims any, d ResourceData) (bool, error) {
	var cv ast.Value
	switch c := claims.(type) {
	case ast.Value:
		cv = c
	case nil:
		cv = ast.Null{}
	default:
		var err error
		if cv, err = ast.InterfaceToValue(c); err != nil {
			return false, fmt.Errorf("policy: resource input: %w", err)
		}
	}
	in := ast.NewObject(
		[2]*ast.Term{ast.StringTerm("c"), ast.NewTerm(cv)},
		[2]*ast.Term{ast.StringTerm("d"), ast.NewTerm(d.value())},
	)
	rs, err := p.pq.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return false, fmt.Errorf("policy: resource policy: %w", err)
	}
	if len(rs) != 1 {
		return false, nil
	}
	allow, ok := rs[0].Bindings["allow"].(bool)
	return ok && allow, nil
}
