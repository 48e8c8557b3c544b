// Package strictjson decodes JSON the way Rust's serde_json does for the
// types Trustee's components exchange, closing the gaps where Go's
// encoding/json is lenient:
//
//   - a member name that appears twice in one object is an error (encoding/json
//     keeps the last one, so a reader and a verifier could see different values);
//   - member names match struct fields case-sensitively ({"Version": …} does
//     not fill the field tagged "version");
//   - the text must be valid UTF-8, and \u escapes must not encode lone
//     surrogates (encoding/json silently substitutes U+FFFD);
//   - nesting is limited to MaxDepth levels, as serde_json's recursion limit.
//
// Unknown members are still ignored, as serde does without
// deny_unknown_fields.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects accepted (serde_json's
// default recursion limit).
const MaxDepth = 128

// ErrInvalid is wrapped by every error Validate and Unmarshal report for
// input that is not strict JSON.
var ErrInvalid = errors.New("invalid JSON")

// SyntaxError describes where strict validation failed.
type SyntaxError struct {
	Offset int    // byte offset in the input
	Path   string // JSON path of the enclosing value, e.g. $["tee-evidence"]
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s at %s (offset %d)", e.Msg, e.Path, e.Offset)
}

func (e *SyntaxError) Unwrap() error { return ErrInvalid }

// Validate checks that data is exactly one strict JSON value (surrounding
// whitespace allowed).
func Validate(data []byte) error {
	return check(data, nil)
}

// Unmarshal validates data strictly, checks member names against v's type
// case-sensitively, and then decodes it with encoding/json.
func Unmarshal(data []byte, v any) error {
	if err := check(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// UnmarshalNumbers is Unmarshal with numbers decoded as json.Number.
func UnmarshalNumbers(data []byte, v any) error {
	if err := check(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func check(data []byte, t reflect.Type) error {
	p := &parser{data: data}
	p.skipSpace()
	if err := p.value(t, 0); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return p.errorf("trailing data after the JSON value")
	}
	return nil
}

type parser struct {
	data   []byte
	pos    int
	path   []frame // the enclosing containers, formatted only for an error
	buf    []byte  // scratch for unescaped member names
	fields map[reflect.Type]map[string]reflect.Type
}

// frame is one step of the path to the current value: a member name or an
// array index.
type frame struct {
	name  string
	index int // -1 for a member
}

func (p *parser) errorf(format string, args ...any) error {
	var b strings.Builder
	b.WriteByte('$')
	for _, e := range p.path {
		if e.index >= 0 {
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		} else {
			b.WriteString("[" + strconv.Quote(e.name) + "]")
		}
	}
	return &SyntaxError{Offset: p.pos, Path: b.String(), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// target reduces t to the type whose shape guides name checking: pointers
// are followed; types that decode themselves (json.Unmarshaler,
// json.RawMessage, interfaces) stop checking (nil).
func target(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Interface:
			return nil
		default:
			return t
		}
	}
	return nil
}

func (p *parser) value(t reflect.Type, depth int) error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input")
	}
	t = target(t)
	switch c := p.data[p.pos]; {
	case c == '{':
		if depth >= MaxDepth {
			return p.errorf("nesting deeper than %d levels", MaxDepth)
		}
		return p.object(t, depth+1)
	case c == '[':
		if depth >= MaxDepth {
			return p.errorf("nesting deeper than %d levels", MaxDepth)
		}
		return p.array(t, depth+1)
	case c == '"':
		_, err := p.str(false)
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		return p.errorf("unexpected character %q", rune(c))
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) number() error {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		p.pos = start
		return p.errorf("invalid number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.errorf("invalid number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.errorf("invalid number")
		}
	}
	return nil
}

// str scans a string starting at the opening quote. With keep, it returns
// the unescaped contents (valid only until the next call).
func (p *parser) str(keep bool) ([]byte, error) {
	p.pos++ // opening quote
	if keep {
		p.buf = p.buf[:0]
	}
	for {
		start := p.pos
		// Fast path: a run of plain ASCII.
		for p.pos < len(p.data) {
			c := p.data[p.pos]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			p.pos++
		}
		if keep {
			p.buf = append(p.buf, p.data[start:p.pos]...)
		}
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated string")
		}
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			return p.buf, nil
		case c < 0x20:
			return nil, p.errorf("control character %#02x in string", c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && n <= 1 {
				return nil, p.errorf("invalid UTF-8 in string")
			}
			if keep {
				p.buf = append(p.buf, p.data[p.pos:p.pos+n]...)
			}
			p.pos += n
		default: // backslash
			if err := p.escape(keep); err != nil {
				return nil, err
			}
		}
	}
}

func (p *parser) escape(keep bool) error {
	if p.pos+1 >= len(p.data) {
		return p.errorf("unterminated escape")
	}
	e := p.data[p.pos+1]
	var out byte
	switch e {
	case '"', '\\', '/':
		out = e
	case 'b':
		out = '\b'
	case 'f':
		out = '\f'
	case 'n':
		out = '\n'
	case 'r':
		out = '\r'
	case 't':
		out = '\t'
	case 'u':
		r, err := p.hex4(p.pos + 2)
		if err != nil {
			return err
		}
		p.pos += 6
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return p.errorf("lone trailing surrogate \\u%04x", r)
		case r >= 0xD800 && r <= 0xDBFF:
			if p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
				return p.errorf("lone leading surrogate \\u%04x", r)
			}
			lo, err := p.hex4(p.pos + 2)
			if err != nil {
				return err
			}
			if lo < 0xDC00 || lo > 0xDFFF {
				return p.errorf("lone leading surrogate \\u%04x", r)
			}
			p.pos += 6
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
		}
		if keep {
			p.buf = utf8.AppendRune(p.buf, r)
		}
		return nil
	default:
		return p.errorf("invalid escape \\%c", rune(e))
	}
	p.pos += 2
	if keep {
		p.buf = append(p.buf, out)
	}
	return nil
}

func (p *parser) hex4(at int) (rune, error) {
	if at+4 > len(p.data) {
		return 0, p.errorf("truncated \\u escape")
	}
	var r rune
	for _, c := range p.data[at : at+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, p.errorf("invalid \\u escape")
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

func (p *parser) array(t reflect.Type, depth int) error {
	p.pos++ // [
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for i := 0; ; i++ {
		p.path = append(p.path, frame{index: i})
		p.skipSpace()
		if err := p.value(elem, depth); err != nil {
			return err
		}
		p.path = p.path[:len(p.path)-1]
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return p.errorf("expected ',' or ']' in array")
		}
	}
}

func (p *parser) object(t reflect.Type, depth int) error {
	p.pos++ // {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = p.structFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	// Duplicates: a linear scan while the object is small (most are), a
	// set beyond.
	var names []string
	var seen map[string]struct{}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.errorf("expected a member name")
		}
		raw, err := p.str(true)
		if err != nil {
			return err
		}
		name := string(raw)
		dup := false
		if seen != nil {
			_, dup = seen[name]
			seen[name] = struct{}{}
		} else {
			for _, n := range names {
				if n == name {
					dup = true
					break
				}
			}
			names = append(names, name)
			if len(names) > 16 {
				seen = make(map[string]struct{}, 2*len(names))
				for _, n := range names {
					seen[n] = struct{}{}
				}
			}
		}
		if dup {
			return p.errorf("duplicate member %q", name)
		}
		vt := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				for fn := range fields {
					if strings.EqualFold(fn, name) {
						return p.errorf("unknown member %q (member names are case-sensitive; the field is %q)", name, fn)
					}
				}
			}
			vt = ft
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.errorf("expected ':' after member name")
		}
		p.pos++
		p.skipSpace()
		p.path = append(p.path, frame{name: name, index: -1})
		if err := p.value(vt, depth); err != nil {
			return err
		}
		p.path = p.path[:len(p.path)-1]
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.errorf("expected ',' or '}' in object")
		}
	}
}

// structFields maps the JSON member names of struct type t to field types,
// following encoding/json's rules for tags and embedded structs.
// structFields returns the member names of struct type t, computed once
// per parse.
func (p *parser) structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := p.fields[t]; ok {
		return f
	}
	out := make(map[string]reflect.Type, t.NumField())
	addStructFields(t, out, 0)
	if p.fields == nil {
		p.fields = make(map[reflect.Type]map[string]reflect.Type)
	}
	p.fields[t] = out
	return out
}

func addStructFields(t reflect.Type, out map[string]reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addStructFields(ft, out, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := out[name]; !ok {
			out[name] = f.Type
		}
	}
}
