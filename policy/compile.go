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
	if err := checkNesting(text); err != nil {
		return nil, fmt.Errorf("policy: parse %s: %w", filename, err)
	}
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

// MaxNesting bounds how deeply brackets may nest in a policy's text. OPA's
// type checker takes time exponential in the nesting of composite values
// (about two minutes for 30 nested lists), before any evaluation limit can
// apply; real policies nest a handful of levels.
const MaxNesting = 20

// checkNesting refuses text whose (, [ and { nest deeper than MaxNesting,
// outside strings and comments.
func checkNesting(text string) error {
	depth := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case '"':
			for i++; i < len(text) && text[i] != '"' && text[i] != '\n'; i++ {
				if text[i] == '\\' {
					i++
				}
			}
		case '`':
			for i++; i < len(text) && text[i] != '`'; i++ {
			}
		case '(', '[', '{':
			if depth++; depth > MaxNesting {
				return fmt.Errorf("brackets nest deeper than %d levels", MaxNesting)
			}
		case ')', ']', '}':
			depth--
		}
	}
	return nil
}

// prepare compiles the first candidate module that prepares successfully
// with the given options; the error of the first candidate is returned if
// none does. Before compilation every candidate must pass o's module checks
// and check (the rules its kind needs); calls of amplifying builtins are
// then rewritten to their size-capped twins, and the disabled builtins are
// removed from the language.
func prepare(filename, text string, o Options, check func(*ast.Module) error, opts ...func(*rego.Rego)) (rego.PreparedEvalQuery, *ast.Module, error) {
	mods, err := parseCandidates(filename, text)
	if err != nil {
		return rego.PreparedEvalQuery{}, nil, err
	}
	for _, m := range mods {
		if err := o.checkModule(m); err != nil {
			return rego.PreparedEvalQuery{}, nil, fmt.Errorf("policy: %s: %w", filename, err)
		}
		if check != nil {
			if err := check(m); err != nil {
				return rego.PreparedEvalQuery{}, nil, fmt.Errorf("policy: %s: %w", filename, err)
			}
		}
	}
	base := append([]func(*rego.Rego){rego.Capabilities(o.capabilities())}, cappedFunctions()...)
	base = append(base, opts...)
	var firstErr error
	for _, m := range mods {
		rewriteCapped(m)
		all := append([]func(*rego.Rego){rego.ParsedModule(m)}, base...)
		pq, err := rego.New(all...).PrepareForEval(context.Background())
		if err == nil {
			return pq, m, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return rego.PreparedEvalQuery{}, nil, &uncappedError{
		msg: fmt.Sprintf("policy: compile %s: %s", filename, uncap(firstErr.Error())),
		err: firstErr,
	}
}

// uncappedError is a compile error whose message names the builtins as the
// policy author wrote them.
type uncappedError struct {
	msg string
	err error
}

func (e *uncappedError) Error() string { return e.msg }
func (e *uncappedError) Unwrap() error { return e.err }

// evalError prefixes an evaluation error, naming builtins as the policy
// author wrote them.
func evalError(prefix string, err error) error {
	return &uncappedError{msg: prefix + uncap(err.Error()), err: err}
}

// errUndefined marks an evaluation that produced no result.
var errUndefined = errors.New("policy: query is undefined")
