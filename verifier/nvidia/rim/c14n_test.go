package rim

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty element expanded", `<a/>`, `<a></a>`},
		{"xml declaration dropped, outer whitespace dropped", "<?xml version=\"1.0\"?>\n<a>x</a>\n", `<a>x</a>`},
		{"attribute order by namespace URI then local name",
			`<a xmlns:z="urn:a" xmlns:b="urn:b" b:x="1" z:y="2" c="3" a="4"/>`,
			`<a xmlns:b="urn:b" xmlns:z="urn:a" a="4" c="3" z:y="2" b:x="1"></a>`},
		{"default namespace first, redundant declarations dropped",
			`<a xmlns:p="urn:p" xmlns="urn:d"><b xmlns="urn:d" xmlns:p="urn:p"/><p:c xmlns:p="urn:q"/></a>`,
			`<a xmlns="urn:d" xmlns:p="urn:p"><b></b><p:c xmlns:p="urn:q"></p:c></a>`},
		{"default namespace undeclared",
			`<a xmlns="urn:d"><b xmlns=""/></a>`,
			`<a xmlns="urn:d"><b xmlns=""></b></a>`},
		{"empty default with no default in parent is not rendered",
			`<a><b xmlns=""/></a>`,
			`<a><b></b></a>`},
		{"text escaping", "<a>&amp; &lt; &gt; \" ' &#xD;\r\n</a>", "<a>&amp; &lt; &gt; \" ' &#xD;\n</a>"},
		{"attribute escaping", `<a x="&amp;&lt;&gt;&quot;'&#9;&#10;&#13;"/>`, `<a x="&amp;&lt;>&quot;'&#x9;&#xA;&#xD;"></a>`},
		{"CDATA becomes text", `<a><![CDATA[<x>&]]></a>`, `<a>&lt;x&gt;&amp;</a>`},
		{"single quotes normalised", `<a x='1'/>`, `<a x="1"></a>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseTree([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(canonicalize(root, nil)); got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestCanonicalSubsetApex(t *testing.T) {
	// A SignedInfo-like apex inherits every in-scope namespace and the
	// xml:lang of its ancestors.
	doc := `<r xmlns="urn:d" xmlns:p="urn:p" xml:lang="en"><s:S xmlns:s="urn:s"><s:I p:q="1"><s:C/></s:I></s:S></r>`
	root, err := parseTree([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	apex := root.elements()[0].elements()[0]
	want := `<s:I xmlns="urn:d" xmlns:p="urn:p" xmlns:s="urn:s" xml:lang="en" p:q="1"><s:C></s:C></s:I>`
	if got := string(canonicalize(apex, nil)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Enveloped removal keeps surrounding whitespace.
	root2, err := parseTree([]byte("<a>\n <b/>\n <sig/>\n</a>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(canonicalize(root2, root2.elements()[1])); got != "<a>\n <b></b>\n \n</a>" {
		t.Fatalf("got %q", got)
	}
}

func TestParseTreeRejects(t *testing.T) {
	deep := strings.Repeat("<a>", maxDepth+1) + strings.Repeat("</a>", maxDepth+1)
	for name, in := range map[string]string{
		"DTD":                  `<!DOCTYPE a><a/>`,
		"entity":               `<a>&foo;</a>`,
		"comment":              `<a><!-- c --></a>`,
		"trailing comment":     `<a/><!-- c -->`,
		"PI":                   `<a><?x y?></a>`,
		"undeclared prefix":    `<p:a/>`,
		"undeclared attr pfx":  `<a p:x="1"/>`,
		"duplicate attribute":  `<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>`,
		"xml:base":             `<a xml:base="http://x/"/>`,
		"prefix undeclaration": `<a xmlns:p="u"><b xmlns:p=""/></a>`,
		"xmlns prefix":         `<a xmlns:xmlns="u"/>`,
		"two roots":            `<a/><b/>`,
		"text outside":         `<a/>x`,
		"mismatched end":       `<a></b>`,
		"unclosed":             `<a>`,
		"empty":                ``,
		"too deep":             deep,
		"utf-16":               `<?xml version="1.0" encoding="UTF-16"?><a/>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseTree([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := parseTree(make([]byte, maxDocumentSize+1)); !errors.Is(err, ErrMalformed) {
		t.Fatal("oversized document accepted")
	}
}

// TestCanonicalDocumentDigest recomputes a real RIM's DigestValue through
// the exported helper.
func TestCanonicalDocumentDigest(t *testing.T) {
	doc := readVector(t, "NV_GPU_DRIVER_GH100_550.144.03.xml")
	canon, err := CanonicalDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(canon), "ds:Signature") || !strings.HasPrefix(string(canon), `<SoftwareIdentity xmlns="`) {
		t.Fatalf("unexpected canonical form prefix %q", canon[:60])
	}
	si, err := CanonicalSignedInfo(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `<ds:SignedInfo xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:ns0="http://standards.iso.org/iso/19770/-2/2015/schema.xsd" xmlns:ns2="http://www.w3.org/2001/04/xmlenc#sha384"><ds:CanonicalizationMethod`
	if !strings.HasPrefix(string(si), want) {
		t.Fatalf("SignedInfo apex %q", si[:200])
	}
}
