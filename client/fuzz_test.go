package client

import (
	"strings"
	"testing"
)

func FuzzParseResourceURI(f *testing.F) {
	for _, s := range []string{"default/key/1", "kbs:///a/b/c?x=y", "kbs+pkcs11://h/a", "/a//b", "kbs+:///", "a?b", "://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseResourceURI(s)
		if err != nil {
			return
		}
		if u.Plugin == "" || len(u.Path) == 0 || strings.Contains(u.Plugin, "/") {
			t.Fatalf("ParseResourceURI(%q) = %+v", s, u)
		}
		rel := u.relative()
		if strings.Contains(strings.SplitN(rel, "?", 2)[0], "?") {
			t.Fatalf("unescaped query separator in %q", rel)
		}
	})
}

func FuzzParseTokenTimes(f *testing.F) {
	for _, s := range []string{jwt(`{"exp":1,"nbf":2}`), jwt(`{"exp":1.5}`), "a.b.c", "", "..", jwt(`{"aud":["x"]}`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tt, err := parseTokenTimes(s)
		if err != nil {
			return
		}
		if (tt.exp != nil && *tt.exp < 0) || (tt.nbf != nil && *tt.nbf < 0) {
			t.Fatalf("negative time accepted from %q", s)
		}
	})
}
