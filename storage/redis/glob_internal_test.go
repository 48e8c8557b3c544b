package redis

import (
	"path"
	"testing"
)

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"repository": "repository",
		"a*b?c":      `a\*b\?c`,
		"[x]^":       `\[x\]\^`,
		`back\slash`: `back\\slash`,
	} {
		got := escapeGlob(in)
		if got != want {
			t.Errorf("escapeGlob(%q) = %q; want %q", in, got, want)
		}
		// Redis glob and path.Match agree on these metacharacters: the escaped
		// pattern matches the literal name and nothing it would otherwise.
		if ok, err := path.Match(got, in); err != nil || !ok {
			t.Errorf("pattern %q does not match %q literally (%v)", got, in, err)
		}
	}
	if ok, _ := path.Match(escapeGlob("a*"), "abc"); ok {
		t.Error(`escaped "a*" matches "abc"`)
	}
}
