package rim

import (
	"os"
	"path/filepath"
	"testing"
)

func addRIMSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	more, _ := filepath.Glob("testdata/*.swidtag")
	for _, name := range append(files, more...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<a xmlns="urn:x"><b xmlns=""/></a>`))
	f.Add([]byte(`<!DOCTYPE a><a/>`))
}

// FuzzVerifySignature: parsing, canonicalization and signature checking of
// arbitrary input must never panic and must be deterministic.
func FuzzVerifySignature(f *testing.F) {
	addRIMSeeds(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		m1, err1 := VerifySignature(doc)
		m2, err2 := VerifySignature(doc)
		if (err1 == nil) != (err2 == nil) || (m1 == nil) != (m2 == nil) {
			t.Fatal("non-deterministic result")
		}
	})
}

// FuzzCanonicalize: the canonical form of a canonical form is itself (C14N
// is idempotent on documents without an XML declaration).
func FuzzCanonicalize(f *testing.F) {
	addRIMSeeds(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		root, err := parseTree(doc)
		if err != nil {
			return
		}
		c1 := canonicalize(root, nil)
		root2, err := parseTree(c1)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%q", err, c1)
		}
		if c2 := canonicalize(root2, nil); string(c1) != string(c2) {
			t.Fatalf("not idempotent:\n%q\n%q", c1, c2)
		}
	})
}
