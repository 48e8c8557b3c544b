// Package policy evaluates Rego policies: the attestation service's appraisal
// policies (default_cpu, default_gpu, ...), which turn verifier claims into an
// AR4SI trust vector, and the KBS resource policy, which decides whether a
// token may fetch a resource.
//
// Policies written for Trustee (Regorus dialect) run unchanged: a module is
// parsed as Rego v1 first and, if that fails, as Rego v0 with all future
// keywords (if, in, contains, every) enabled, so "import rego.v1" is optional
// and both "default x = v" and "x := v" are accepted.
package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// packagePath is the package every policy must declare.
var packagePath = ast.MustParseRef("data.policy")

// parseCandidates parses text as Rego v1 and, when that fails, as Rego v0
// with the future keywords imported. It returns the modules that parsed, in
// order of preference, or the v1 parse error.
func parseCandidates(filename, text string) ([]*ast.Module, error) {
	var mods []*ast.Module
	m1, err1 := ast.ParseModuleWithOpts(filename, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err1 == nil {
		mods = append(mods, m1)
	}
	m0, err0 := ast.ParseModuleWithOpts(filename, text, ast.ParserOptions{RegoVersion: ast.RegoV0, AllFutureKeywords: true})
	if err0 == nil {
		mods = append(mods, m0)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("policy: parse %s: %w", filename, err1)
	}
	for _, m := range mods {
		if !m.Package.Path.Equal(packagePath) {
			return nil, fmt.Errorf("policy: %s declares package %v, want package policy", filename, m.Package.Path)
		}
	}
	return mods, nil
}

// prepare compiles the first candidate module that prepares successfully
// with the given options; the error of the first candidate is returned if
// none does.
func prepare(filename, text string, opts ...func(*rego.Rego)) (rego.PreparedEvalQuery, *ast.Module, error) {
	mods, err := parseCandidates(filename, text)
	if err != nil {
		return rego.PreparedEvalQuery{}, nil, err
	}
	var firstErr error
	for _, m := range mods {
		all := append([]func(*rego.Rego){rego.ParsedModule(m)}, opts...)
		pq, err := rego.New(all...).PrepareForEval(context.Background())
		if err == nil {
			return pq, m, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return rego.PreparedEvalQuery{}, nil, fmt.Errorf("policy: compile %s: %w", filename, firstErr)
}

// errUndefined marks an evaluation that produced no result.
var errUndefined = errors.New("policy: query is undefined")
