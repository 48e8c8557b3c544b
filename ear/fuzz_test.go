package ear

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzTrustVectorJSON checks that any vector the decoder accepts encodes and
// decodes back to itself, and that its status is one of the four tiers.
func FuzzTrustVectorJSON(f *testing.F) {
	f.Add([]byte(`{"hardware":2,"executables":33}`))
	f.Add([]byte(`{"sourced-data":-128,"instance-identity":127}`))
	f.Add([]byte(`{"hardware":2e0}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v TrustVector
		if json.Unmarshal(data, &v) != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back TrustVector
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Errorf("round trip of %s changed", b)
		}
		if !v.Status().Valid() {
			t.Errorf("status %q", v.Status())
		}
	})
}
