package jcs

import (
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize re-encodes JSON text canonically. It rejects invalid JSON
// (including trailing data), invalid UTF-8, lone surrogates, duplicate
// object keys and numbers that are not finite IEEE-754 doubles.
func Canonicalize(data []byte) ([]byte, error) {
	return appendCanonical(make([]byte, 0, len(data)), data)
}

func appendCanonical(dst, data []byte) ([]byte, error) {
	p := parser{data: data}
	p.skipSpace()
	dst, err := p.value(dst, 0)
	if err != nil {
		return dst, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return dst, p.errorf("trailing data")
	}
	return dst, nil
}

type parser struct {
	data []byte
	pos  int
	// keyBuf is scratch space for decoding keys with escapes.
	keyBuf []byte
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, fmt.Sprintf(format, args...), p.pos)
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

// value parses one JSON value at p.pos and appends its canonical form.
func (p *parser) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, p.errorf("nesting deeper than %d", maxDepth)
	}
	if p.pos >= len(p.data) {
		return dst, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(dst, depth)
	case c == '[':
		return p.array(dst, depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return dst, err
		}
		return appendString(dst, s)
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	case c == '-' || isDigit(c):
		return p.number(dst)
	default:
		return dst, p.errorf("unexpected character %q", c)
	}
}

func (p *parser) literal(dst []byte, lit string) ([]byte, error) {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return dst, p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return append(dst, lit...), nil
}

func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if isDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	text := string(p.data[start:p.pos])
	if !validNumber(text) {
		p.pos = start
		return dst, p.errorf("invalid number %q", text)
	}
	return appendNumberText(dst, text)
}

func (p *parser) array(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return append(dst, ']'), nil
	}
	for {
		var err error
		p.skipSpace()
		if dst, err = p.value(dst, depth+1); err != nil {
			return dst, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return dst, p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			dst = append(dst, ',')
		case ']':
			p.pos++
			return append(dst, ']'), nil
		default:
			return dst, p.errorf("expected ',' or ']'")
		}
	}
}

type member struct {
	key        string
	start, end int // canonical value bytes, relative to the object's scratch start
}

func (p *parser) object(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return append(dst, '{', '}'), nil
	}
	// Member values are first encoded after base as scratch, then the
	// members are sorted and the object is written over the scratch.
	base := len(dst)
	var members []member
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return dst, p.errorf("expected object key")
		}
		key, err := p.string()
		if err != nil {
			return dst, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return dst, p.errorf("expected ':'")
		}
		p.pos++
		p.skipSpace()
		start := len(dst)
		if dst, err = p.value(dst, depth+1); err != nil {
			return dst, err
		}
		members = append(members, member{key: key, start: start - base, end: len(dst) - base})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return dst, p.errorf("unterminated object")
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] == '}' {
			p.pos++
			break
		}
		return dst, p.errorf("expected ',' or '}'")
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if members[i].key == members[i-1].key {
			return dst, fmt.Errorf("%w: %q", ErrDuplicateKey, members[i].key)
		}
	}
	values := slices.Clone(dst[base:])
	dst = append(dst[:base], '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendString(dst, m.key); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		dst = append(dst, values[m.start:m.end]...)
	}
	return append(dst, '}'), nil
}

// string parses a JSON string at p.pos (which holds '"') and returns its
// value. Invalid UTF-8, raw control characters, bad escapes and lone
// surrogates are errors.
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			if !utf8.Valid(s) {
				return "", fmt.Errorf("%w: invalid UTF-8 in string at offset %d", ErrInvalidString, start)
			}
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.pos++
	}
	buf := append(p.keyBuf[:0], p.data[start:p.pos]...)
	for {
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.keyBuf = buf
			if !utf8.Valid(buf) {
				return "", fmt.Errorf("%w: invalid UTF-8 in string at offset %d", ErrInvalidString, start)
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		// Escape sequence.
		if p.pos+1 >= len(p.data) {
			return "", p.errorf("unterminated escape")
		}
		e := p.data[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 {
					return "", fmt.Errorf("%w: lone low surrogate at offset %d", ErrInvalidString, p.pos)
				}
				if p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
					return "", fmt.Errorf("%w: lone high surrogate at offset %d", ErrInvalidString, p.pos)
				}
				p.pos += 2
				r2, ok := p.hex4()
				if !ok {
					return "", p.errorf("invalid \\u escape")
				}
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return "", fmt.Errorf("%w: lone high surrogate at offset %d", ErrInvalidString, p.pos)
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape %q", e)
		}
	}
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}
