package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/sigil-attestation/sigil/ear"
)

// networkBuiltins reach outside the policy engine; Options.AllowNetwork
// re-enables them.
func networkBuiltins() []string {
	return []string{
		ast.HTTPSend.Name,
		ast.NetLookupIPAddr.Name,
		ast.JSONSchemaVerify.Name, // a $ref may load file:// or http(s):// URLs
		ast.JSONMatchSchema.Name,
	}
}

// alwaysDisabledBuiltins are never available to policies.
func alwaysDisabledBuiltins() []string {
	return []string{ast.OPARuntime.Name} // the host's environment and configuration
}

// disabledBuiltins returns the builtins o removes from the policy language.
func (o Options) disabledBuiltins() []string {
	out := alwaysDisabledBuiltins()
	if !o.AllowNetwork {
		out = append(out, networkBuiltins()...)
	}
	return out
}

// capabilities returns the OPA capabilities for o: every builtin of this OPA
// version but the disabled ones, and no network host unless AllowNetwork.
func (o Options) capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	off := o.disabledBuiltins()
	c.Builtins = slices.DeleteFunc(c.Builtins, func(b *ast.Builtin) bool { return slices.Contains(off, b.Name) })
	if !o.AllowNetwork {
		c.AllowNet = []string{}
	}
	return c
}

// checkModule applies the checks every policy must pass before it is
// compiled: no use of the reserved namespace, no disabled builtin.
func (o Options) checkModule(mod *ast.Module) error {
	var err error
	ast.WalkVars(mod, func(v ast.Var) bool {
		if err == nil && v == cappedRoot {
			err = fmt.Errorf("%s is a reserved name", cappedRoot)
		}
		return err != nil
	})
	if err != nil {
		return err
	}
	off := o.disabledBuiltins()
	check := func(t *ast.Term) {
		if err != nil || t == nil {
			return
		}
		ref, ok := t.Value.(ast.Ref)
		if !ok {
			return
		}
		name := ref.String()
		if !slices.Contains(off, name) {
			return
		}
		where := ""
		if t.Location != nil {
			where = fmt.Sprintf("line %d: ", t.Location.Row)
		}
		if slices.Contains(networkBuiltins(), name) {
			err = fmt.Errorf("%sbuiltin %s is disabled: policies may not reach the network or the file system (see the AllowNetwork option)", where, name)
		} else {
			err = fmt.Errorf("%sbuiltin %s is disabled: policies may not read the host's environment", where, name)
		}
	}
	ast.WalkExprs(mod, func(e *ast.Expr) bool {
		if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) > 0 {
			check(terms[0])
		}
		for _, w := range e.With {
			check(w.Value)
		}
		return err != nil
	})
	ast.WalkTerms(mod, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
			check(call[0])
		}
		return err != nil
	})
	return err
}

// rulesNamed returns the rules of mod whose head reference starts with name.
func rulesNamed(mod *ast.Module, name string) []*ast.Rule {
	var out []*ast.Rule
	for _, r := range mod.Rules {
		ref := r.Head.Ref()
		if len(ref) > 0 && ref[0].Value.Compare(ast.Var(name)) == 0 {
			out = append(out, r)
		}
	}
	return out
}

// requireRule fails unless mod defines rule name.
func requireRule(mod *ast.Module, name, why string) error {
	if len(rulesNamed(mod, name)) == 0 {
		return fmt.Errorf("the policy defines no %s rule (%s)", name, why)
	}
	return nil
}

// checkTrustClaims rejects trust_claims rules that cannot produce a valid
// trust vector whatever the input: a set, or a claim name that is not one of
// the eight AR4SI trustworthiness claims (names only known at evaluation
// time are checked then).
func checkTrustClaims(mod *ast.Module) error {
	for _, r := range rulesNamed(mod, "trust_claims") {
		for ; r != nil; r = r.Else {
			if err := checkTrustClaimsRule(r); err != nil {
				return fmt.Errorf("line %d: %w", r.Location.Row, err)
			}
		}
	}
	return nil
}

func checkTrustClaimsRule(r *ast.Rule) error {
	ref := r.Head.Ref()
	if r.Head.Value == nil {
		return fmt.Errorf("trust_claims must be an object of claim name to integer, not a set")
	}
	if len(ref) > 1 {
		if s, ok := ref[1].Value.(ast.String); ok {
			return checkClaimName(string(s))
		}
		return nil
	}
	obj, ok := r.Head.Value.Value.(ast.Object)
	if !ok {
		return nil
	}
	var err error
	obj.Until(func(k, _ *ast.Term) bool {
		if s, ok := k.Value.(ast.String); ok {
			err = checkClaimName(string(s))
		}
		return err != nil
	})
	return err
}

func checkClaimName(name string) error {
	if ear.IsClaimName(name) {
		return nil
	}
	return fmt.Errorf("unknown trust claim %q: trust_claims keys must be AR4SI trustworthiness claims (%s)",
		name, strings.Join(ear.ClaimNames(), ", "))
}
