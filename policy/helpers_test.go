package policy

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// rvMap is an in-memory ReferenceValues: id -> JSON text.
type rvMap struct {
	mu      sync.Mutex
	values  map[string]string
	queries map[string]int
}

func newRV(kv map[string]string) *rvMap {
	return &rvMap{values: kv, queries: make(map[string]int)}
}

func (m *rvMap) Query(_ context.Context, id string) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries[id]++
	v, ok := m.values[id]
	if !ok {
		return nil, nil
	}
	return json.RawMessage(v), nil
}

func loadJSON(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func mustAppraisal(t testing.TB, id, text string) *Appraisal {
	t.Helper()
	p, err := CompileAppraisal(id, text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func defaultPolicy(t testing.TB, id string) *Appraisal {
	t.Helper()
	text, ok := DefaultAppraisalPolicies()[id]
	if !ok {
		t.Fatalf("no embedded policy %s", id)
	}
	return mustAppraisal(t, id, text)
}
