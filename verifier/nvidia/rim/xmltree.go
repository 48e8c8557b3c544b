package rim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Limits applied while parsing untrusted XML. Real NVIDIA RIMs are about
// 20–30 KiB with a depth of 5, so these bounds are generous.
const (
	maxDocumentSize = 4 << 20
	maxDepth        = 64
	maxTokens       = 200000
	maxAttributes   = 256
)

const (
	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

// node is an element of the minimal DOM used for canonicalization. Only
// elements and text are represented: comments, processing instructions
// (other than the XML declaration) and DTDs are rejected at parse time.
type node struct {
	prefix, local string
	uri           string            // resolved namespace URI of the element
	decls         []nsDecl          // namespace declarations written on this element
	attrs         []attribute       // ordinary attributes
	scope         map[string]string // in-scope namespaces (prefix "" = default)
	children      []content
	parent        *node
}

type nsDecl struct{ prefix, uri string }

type attribute struct {
	prefix, local, uri, value string
}

// content is either a child element or a text node.
type content struct {
	elem *node
	text string
}

func (n *node) qname() string {
	if n.prefix == "" {
		return n.local
	}
	return n.prefix + ":" + n.local
}

// attr returns the value of the attribute with the given namespace URI and
// local name.
func (n *node) attr(uri, local string) (string, bool) {
	for _, a := range n.attrs {
		if a.uri == uri && a.local == local {
			return a.value, true
		}
	}
	return "", false
}

// elements returns the child elements.
func (n *node) elements() []*node {
	var out []*node
	for _, c := range n.children {
		if c.elem != nil {
			out = append(out, c.elem)
		}
	}
	return out
}

// text returns the concatenated text children.
func (n *node) text() string {
	var b strings.Builder
	for _, c := range n.children {
		if c.elem == nil {
			b.WriteString(c.text)
		}
	}
	return b.String()
}

// onlyElements returns the child elements and fails if any text child is not
// whitespace.
func (n *node) onlyElements() ([]*node, error) {
	for _, c := range n.children {
		if c.elem == nil && strings.TrimSpace(c.text) != "" {
			return nil, fmt.Errorf("%w: unexpected text in <%s>", ErrMalformed, n.qname())
		}
	}
	return n.elements(), nil
}

// parseTree parses a standalone XML document into the minimal DOM. It
// rejects DTDs, comments, processing instructions (except a leading XML
// declaration), undeclared prefixes, duplicate attributes, xml:base and
// documents beyond the size, depth and token limits.
func parseTree(doc []byte) (*node, error) {
	if len(doc) > maxDocumentSize {
		return nil, fmt.Errorf("%w: document of %d bytes exceeds %d", ErrMalformed, len(doc), maxDocumentSize)
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	// Only UTF-8 (and its ASCII subset) is accepted.
	dec.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("%w: unsupported charset %q", ErrMalformed, label)
	}
	var (
		root   *node
		stack  []*node
		tokens int
		seenPI bool
	)
	rootScope := map[string]string{}
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		tokens++
		if tokens > maxTokens {
			return nil, fmt.Errorf("%w: more than %d XML tokens", ErrMalformed, maxTokens)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || seenPI || root != nil || tokens != 1 {
				return nil, fmt.Errorf("%w: processing instruction %q not allowed", ErrMalformed, t.Target)
			}
			seenPI = true
			if enc := xmlDeclEncoding(t.Inst); enc != "" && !strings.EqualFold(enc, "utf-8") && !strings.EqualFold(enc, "us-ascii") {
				return nil, fmt.Errorf("%w: unsupported encoding %q", ErrMalformed, enc)
			}
		case xml.Directive:
			return nil, fmt.Errorf("%w: DTDs and directives are not allowed", ErrMalformed)
		case xml.Comment:
			return nil, fmt.Errorf("%w: comments are not allowed", ErrMalformed)
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, fmt.Errorf("%w: text outside the document element", ErrMalformed)
				}
				continue
			}
			top := stack[len(stack)-1]
			s := string(t)
			if k := len(top.children); k > 0 && top.children[k-1].elem == nil {
				top.children[k-1].text += s
			} else {
				top.children = append(top.children, content{text: s})
			}
		case xml.StartElement:
			if len(stack) == 0 && root != nil {
				return nil, fmt.Errorf("%w: more than one document element", ErrMalformed)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
			}
			parentScope := rootScope
			var parent *node
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
				parentScope = parent.scope
			}
			n, err := newNode(t, parent, parentScope)
			if err != nil {
				return nil, err
			}
			if parent != nil {
				parent.children = append(parent.children, content{elem: n})
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("%w: unexpected end element", ErrMalformed)
			}
			top := stack[len(stack)-1]
			if t.Name.Space != top.prefix || t.Name.Local != top.local {
				return nil, fmt.Errorf("%w: end element </%s> does not match <%s>", ErrMalformed, joinName(t.Name), top.qname())
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("%w: unexpected end of document", ErrMalformed)
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no document element", ErrMalformed)
	}
	return root, nil
}

func joinName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func xmlDeclEncoding(inst []byte) string {
	s := string(inst)
	i := strings.Index(s, "encoding")
	if i < 0 {
		return ""
	}
	s = strings.TrimLeft(s[i+len("encoding"):], " \t\r\n")
	if !strings.HasPrefix(s, "=") {
		return ""
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return ""
	}
	q := s[0]
	s = s[1:]
	if j := strings.IndexByte(s, q); j >= 0 {
		return s[:j]
	}
	return ""
}

func newNode(t xml.StartElement, parent *node, parentScope map[string]string) (*node, error) {
	if len(t.Attr) > maxAttributes {
		return nil, fmt.Errorf("%w: more than %d attributes", ErrMalformed, maxAttributes)
	}
	if strings.Contains(t.Name.Local, ":") {
		return nil, fmt.Errorf("%w: invalid element name %q", ErrMalformed, t.Name.Local)
	}
	n := &node{prefix: t.Name.Space, local: t.Name.Local, parent: parent, scope: parentScope}
	// Namespace declarations first.
	seenDecl := map[string]bool{}
	for _, a := range t.Attr {
		var prefix string
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			prefix = ""
		case a.Name.Space == "xmlns":
			prefix = a.Name.Local
			if prefix == "" || prefix == "xmlns" || prefix == "xml" {
				return nil, fmt.Errorf("%w: reserved namespace prefix %q", ErrMalformed, prefix)
			}
			if a.Value == "" {
				return nil, fmt.Errorf("%w: prefix %q undeclared", ErrMalformed, prefix)
			}
		default:
			continue
		}
		if a.Value == nsXML || a.Value == nsXMLNS {
			return nil, fmt.Errorf("%w: reserved namespace URI bound to %q", ErrMalformed, prefix)
		}
		if seenDecl[prefix] {
			return nil, fmt.Errorf("%w: duplicate namespace declaration %q", ErrMalformed, prefix)
		}
		seenDecl[prefix] = true
		n.decls = append(n.decls, nsDecl{prefix: prefix, uri: a.Value})
	}
	if len(n.decls) > 0 {
		scope := make(map[string]string, len(parentScope)+len(n.decls))
		for k, v := range parentScope {
			scope[k] = v
		}
		for _, d := range n.decls {
			if d.prefix == "" && d.uri == "" {
				delete(scope, "")
				continue
			}
			scope[d.prefix] = d.uri
		}
		n.scope = scope
	}
	uri, err := n.resolve(n.prefix, true)
	if err != nil {
		return nil, err
	}
	n.uri = uri
	seenAttr := map[[2]string]bool{}
	for _, a := range t.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		if strings.Contains(a.Name.Local, ":") {
			return nil, fmt.Errorf("%w: invalid attribute name %q", ErrMalformed, a.Name.Local)
		}
		var auri string
		if a.Name.Space != "" {
			if auri, err = n.resolve(a.Name.Space, false); err != nil {
				return nil, err
			}
		}
		if auri == nsXML && a.Name.Local == "base" {
			return nil, fmt.Errorf("%w: xml:base is not supported", ErrMalformed)
		}
		key := [2]string{auri, a.Name.Local}
		if seenAttr[key] {
			return nil, fmt.Errorf("%w: duplicate attribute %q", ErrMalformed, joinName(a.Name))
		}
		seenAttr[key] = true
		n.attrs = append(n.attrs, attribute{prefix: a.Name.Space, local: a.Name.Local, uri: auri, value: a.Value})
	}
	return n, nil
}

func (n *node) resolve(prefix string, element bool) (string, error) {
	if prefix == "xml" {
		return nsXML, nil
	}
	if prefix == "" {
		if element {
			return n.scope[""], nil
		}
		return "", nil
	}
	uri, ok := n.scope[prefix]
	if !ok {
		return "", fmt.Errorf("%w: undeclared namespace prefix %q", ErrMalformed, prefix)
	}
	return uri, nil
}

// canonicalizer renders a subtree in Canonical XML 1.1 (inclusive, without
// comments).
type canonicalizer struct {
	buf  bytes.Buffer
	skip *node // subtree omitted (enveloped signature)
}

// canonicalize renders apex and its descendants (minus c.skip) as a document
// subset whose apex inherits every in-scope namespace and the inheritable
// xml:* attributes of its ancestors.
func canonicalize(apex, skip *node) []byte {
	c := &canonicalizer{skip: skip}
	c.element(apex, map[string]string{}, true)
	return c.buf.Bytes()
}

func (c *canonicalizer) element(n *node, rendered map[string]string, apex bool) {
	c.buf.WriteByte('<')
	c.buf.WriteString(n.qname())

	// Namespace axis: every in-scope namespace not already rendered with the
	// same value by the output parent.
	prefixes := make([]string, 0, len(n.scope))
	for p := range n.scope {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes) // "" (default) sorts first
	if _, hasDefault := n.scope[""]; !hasDefault && rendered[""] != "" {
		c.buf.WriteString(` xmlns=""`)
	}
	for _, p := range prefixes {
		uri := n.scope[p]
		if prev, ok := rendered[p]; ok && prev == uri {
			continue
		}
		if p == "" {
			c.buf.WriteString(` xmlns="`)
		} else {
			c.buf.WriteString(` xmlns:`)
			c.buf.WriteString(p)
			c.buf.WriteString(`="`)
		}
		escapeAttr(&c.buf, uri)
		c.buf.WriteByte('"')
	}

	attrs := n.attrs
	if apex {
		attrs = append(append([]attribute(nil), attrs...), inheritedXMLAttrs(n)...)
	}
	if len(attrs) > 1 {
		attrs = append([]attribute(nil), attrs...)
		sort.Slice(attrs, func(i, j int) bool {
			if attrs[i].uri != attrs[j].uri {
				return attrs[i].uri < attrs[j].uri
			}
			return attrs[i].local < attrs[j].local
		})
	}
	for _, a := range attrs {
		c.buf.WriteByte(' ')
		if a.prefix != "" {
			c.buf.WriteString(a.prefix)
			c.buf.WriteByte(':')
		}
		c.buf.WriteString(a.local)
		c.buf.WriteString(`="`)
		escapeAttr(&c.buf, a.value)
		c.buf.WriteByte('"')
	}
	c.buf.WriteByte('>')

	for _, ch := range n.children {
		if ch.elem == nil {
			escapeText(&c.buf, ch.text)
			continue
		}
		if ch.elem == c.skip {
			continue
		}
		c.element(ch.elem, n.scope, false)
	}
	c.buf.WriteString("</")
	c.buf.WriteString(n.qname())
	c.buf.WriteByte('>')
}

// inheritedXMLAttrs returns the xml:lang and xml:space attributes of the
// ancestors of n that n does not override (C14N 1.1 §2.4; xml:base is
// rejected at parse time and xml:id is not inherited).
func inheritedXMLAttrs(n *node) []attribute {
	var out []attribute
	have := map[string]bool{}
	for _, a := range n.attrs {
		if a.uri == nsXML {
			have[a.local] = true
		}
	}
	for p := n.parent; p != nil; p = p.parent {
		for _, a := range p.attrs {
			if a.uri == nsXML && (a.local == "lang" || a.local == "space") && !have[a.local] {
				have[a.local] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func escapeText(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteByte(ch)
		}
	}
}

func escapeAttr(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '"':
			b.WriteString("&quot;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteByte(ch)
		}
	}
}
