package kbsclient

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// TestBuiltinPolicies evaluates the embedded resource policies the way the
// KBS does: data.policy.allow with the token claims as input and the request
// description as data.
func TestBuiltinPolicies(t *testing.T) {
	affirmingClaims := map[string]any{"submods": map[string]any{
		"cpu0": map[string]any{"ear.status": "affirming"},
		"gpu0": map[string]any{"ear.status": "affirming"},
	}}
	mixedClaims := map[string]any{"submods": map[string]any{
		"cpu0": map[string]any{"ear.status": "affirming"},
		"gpu0": map[string]any{"ear.status": "contraindicated"},
	}}
	emptyClaims := map[string]any{"submods": map[string]any{}}
	resource := map[string]any{"plugin": "resource", "resource-path": []any{"a", "b", "c"}, "query": map[string]any{}}
	other := map[string]any{"plugin": "nebula-ca", "resource-path": []any{"x"}, "query": map[string]any{}}

	tests := []struct {
		name   string
		policy []byte
		input  map[string]any
		data   map[string]any
		want   bool
	}{
		{"allow_all resource", allowAllPolicy, mixedClaims, resource, true},
		{"allow_all other plugin", allowAllPolicy, affirmingClaims, other, false},
		{"deny_all", denyAllPolicy, affirmingClaims, resource, false},
		{"affirming all affirming", affirmingPolicy, affirmingClaims, resource, true},
		{"affirming one contraindicated", affirmingPolicy, mixedClaims, resource, false},
		{"affirming no submods", affirmingPolicy, emptyClaims, resource, false},
		{"affirming missing submods", affirmingPolicy, map[string]any{}, resource, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pq, err := rego.New(
				rego.Query("data.policy.allow"),
				rego.Module("policy.rego", string(tt.policy)),
				rego.Store(inmem.NewFromObject(tt.data)),
			).PrepareForEval(ctx)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			rs, err := pq.Eval(ctx, rego.EvalInput(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if got := rs.Allowed(); got != tt.want {
				t.Errorf("allow = %v, want %v (%v)", got, tt.want, rs)
			}
		})
	}
}
