package policy

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/sigil-attestation/sigil/ear"
)

// trustClaimRefs maps each trust claim to the rule that produces it when the
// policy has the usual shape
//
//	trust_claims := {"hardware": hardware, ...}
//
// i.e. a single complete trust_claims rule whose value is an object literal
// of rule references. Other shapes yield no mapping, and the explanation
// then points at the trust_claims rule itself.
func trustClaimRefs(mod *ast.Module) map[string]ast.Ref {
	var tc []*ast.Rule
	for _, r := range mod.Rules {
		if r.Head.Ref().Equal(ast.Ref{ast.VarTerm("trust_claims")}) {
			tc = append(tc, r)
		}
	}
	if len(tc) != 1 || tc[0].Head.Value == nil || tc[0].Else != nil {
		return nil
	}
	obj, ok := tc[0].Head.Value.Value.(ast.Object)
	if !ok {
		return nil
	}
	refs := make(map[string]ast.Ref)
	obj.Foreach(func(k, v *ast.Term) {
		name, ok := k.Value.(ast.String)
		if !ok {
			return
		}
		switch t := v.Value.(type) {
		case ast.Var:
			refs[string(name)] = mod.Package.Path.Append(ast.StringTerm(string(t)))
		case ast.Ref:
			if t.HasPrefix(ast.DefaultRootRef) {
				refs[string(name)] = t
			} else if len(t) > 0 {
				if head, ok := t[0].Value.(ast.Var); ok {
					r := mod.Package.Path.Append(ast.StringTerm(string(head)))
					refs[string(name)] = r.Concat(t[1:])
				}
			}
		}
	})
	return refs
}

// explain derives, from the evaluation trace, which rule produced each set
// trust claim.
func (p *Appraisal) explain(events []*topdown.Event, v ear.TrustVector) map[string]ClaimExplanation {
	out := make(map[string]ClaimExplanation)
	for _, name := range ear.ClaimNames() {
		val, ok := v.Get(name)
		if !ok {
			continue
		}
		ce := ClaimExplanation{Value: val, Rule: "default"}
		ref, mapped := p.claimRefs[name]
		if !mapped {
			ce.Rule = "trust_claims"
			out[name] = ce
			continue
		}
		var def *ast.Rule
		for _, e := range events {
			if e.Op != topdown.ExitOp {
				continue
			}
			r, ok := e.Node.(*ast.Rule)
			if !ok || r.Module == nil || !r.Ref().Equal(ref) {
				continue
			}
			if r.Default {
				def = r
				continue
			}
			if !headProduces(r, val) {
				continue
			}
			ce.Rule = ruleHead(r)
			ce.Location = location(r)
			def = nil
			break
		}
		if ce.Rule == "default" && def != nil {
			ce.Location = location(def)
		}
		out[name] = ce
	}
	return out
}

// headProduces reports whether the rule's head value is val, or cannot be
// known without the bindings (a non-constant head).
func headProduces(r *ast.Rule, val int8) bool {
	if r.Head.Value == nil {
		return true
	}
	n, ok := r.Head.Value.Value.(ast.Number)
	if !ok {
		return !ast.IsConstant(r.Head.Value.Value)
	}
	i, ok := n.Int()
	return ok && i == int(val)
}

// ruleHead renders "name := value" (or the first source line of the rule).
func ruleHead(r *ast.Rule) string {
	if r.Location != nil && len(r.Location.Text) > 0 {
		line, _, _ := strings.Cut(string(r.Location.Text), "\n")
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "{"))
		line = strings.TrimSpace(strings.TrimSuffix(line, " if"))
		if rest, ok := strings.CutPrefix(line, "else"); ok {
			return strings.TrimSpace(r.Head.Ref().String()+rest) + " (else branch)"
		}
		if line != "" {
			return line
		}
	}
	if r.Head.Value != nil {
		return fmt.Sprintf("%v := %v", r.Head.Ref(), r.Head.Value)
	}
	return r.Head.Ref().String()
}

func location(r *ast.Rule) string {
	if r.Location == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
}
