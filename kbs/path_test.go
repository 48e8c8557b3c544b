package kbs

import (
	"slices"
	"strings"
	"testing"
)

func TestValidResourcePath(t *testing.T) {
	// Trustee's ResourceDesc regex cases plus traversal attempts.
	cases := []struct {
		path []string
		ok   bool
	}{
		{[]string{"default", "1", "2"}, true},
		{[]string{"1.ok", "2ok.", "3..."}, true},
		{[]string{"a_b", "c-d", "E.F"}, true},
		{[]string{"1", "2"}, false},
		{[]string{".1", "ok", "x"}, false},
		{[]string{"..", "b", "c"}, false},
		{[]string{"a", "b", "c", "d"}, false},
		{[]string{"a", "", "c"}, false},
		{[]string{"a", "b/c", "d"}, false},
		{[]string{"a", "b c", "d"}, false},
		{[]string{"a", "b", "c\x00"}, false},
	}
	for _, c := range cases {
		if err := ValidResourcePath(c.path); (err == nil) != c.ok {
			t.Errorf("%q: err=%v, want ok=%v", c.path, err, c.ok)
		}
	}
}

func TestSplitPath(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"resource/default/test/secret", []string{"resource", "default", "test", "secret"}, true},
		{"resource//default/test/secret", []string{"resource", "default", "test", "secret"}, true},
		{"", nil, true},
		{"resource/a%20b/c/d", []string{"resource", "a b", "c", "d"}, true},
		{"resource/../x/y", nil, false},
		{"resource/%2e%2e/x/y", nil, false},
		{"resource/a%2Fb/c/d", nil, false},
		{"resource/a%2fb/c/d", nil, false},
		{"resource/a%5cb/c/d", nil, false},
		{"resource/a%00/c/d", nil, false},
		{"resource/%zz/c/d", nil, false},
		{"resource/./c/d", nil, false},
	}
	for _, c := range cases {
		got, err := splitPath(c.in)
		if (err == nil) != c.ok || (c.ok && !slices.Equal(got, c.want)) {
			t.Errorf("%q: got %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestLogSafe(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct{ in, want string }{
		{"/kbs/v0/resource/a/b/c", "/kbs/v0/resource/a/b/c"},
		{"a\nlevel=ERROR msg=forged", `a\x0alevel=ERROR msg=forged`},
		{"tab\there", `tab\x09here`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"back\\slash", `back\\slash`},
		{"line\u2028sep", `line\u2028sep`},
		{"real \uFFFD", `real \ufffd`},
		{long, strings.Repeat("a", 256) + "...(300 bytes)"},
	}
	for _, tt := range tests {
		if got := logSafe(tt.in); got != tt.want {
			t.Errorf("logSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
