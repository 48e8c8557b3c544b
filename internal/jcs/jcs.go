// Package jcs implements the RFC 8785 JSON Canonicalization Scheme (JCS).
//
// JCS is what Trustee and the CoCo guest components hash to bind the TEE
// public key and the challenge nonce into the TEE report data: object members
// sorted by their UTF-16 code units, no insignificant whitespace, ECMAScript
// string escaping (only '"', '\\' and control characters are escaped) and
// ECMAScript Number.prototype.toString number formatting.
//
// Numbers are IEEE-754 doubles: integers beyond 2^53 lose precision exactly as
// they would in JavaScript, and values that overflow a double, NaN and the
// infinities are rejected. Invalid UTF-8, lone surrogates and duplicate object
// keys are rejected.
package jcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Errors reported by Marshal and Canonicalize. They are wrapped with details.
var (
	// ErrInvalidJSON is returned for JSON text that does not parse.
	ErrInvalidJSON = errors.New("jcs: invalid JSON")
	// ErrDuplicateKey is returned for an object with the same key twice.
	ErrDuplicateKey = errors.New("jcs: duplicate object key")
	// ErrInvalidNumber is returned for NaN, infinities and numbers that
	// overflow an IEEE-754 double.
	ErrInvalidNumber = errors.New("jcs: number not representable")
	// ErrInvalidString is returned for strings that are not valid Unicode
	// (invalid UTF-8 or lone surrogates).
	ErrInvalidString = errors.New("jcs: invalid string")
	// ErrUnsupportedValue is returned for Go values JSON cannot represent.
	ErrUnsupportedValue = errors.New("jcs: unsupported value")
)

// maxDepth bounds nesting, as encoding/json does, so hostile input cannot
// exhaust the stack.
const maxDepth = 10000

// Marshal encodes v (any value encoding/json can marshal) as RFC 8785
// canonical JSON.
//
// map[string]any, []any, map[string]string, []string, string, bool, nil, the
// integer and float kinds, json.Number and json.RawMessage are encoded
// directly; other values are marshalled with encoding/json and the result is
// canonicalized.
func Marshal(v any) ([]byte, error) {
	return Append(make([]byte, 0, 256), v)
}

// Append is like Marshal but appends the canonical encoding of v to dst.
func Append(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, fmt.Errorf("%w: nesting deeper than %d", ErrUnsupportedValue, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x)
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case float64:
		return appendFloat(dst, x)
	case float32:
		// encoding/json writes a float32 with its own shortest form, which a
		// reader then parses as a double; do the same.
		f, err := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		if err != nil {
			return dst, fmt.Errorf("%w: %v", ErrInvalidNumber, x)
		}
		return appendFloat(dst, f)
	case int:
		return appendFloat(dst, float64(x))
	case int8:
		return appendFloat(dst, float64(x))
	case int16:
		return appendFloat(dst, float64(x))
	case int32:
		return appendFloat(dst, float64(x))
	case int64:
		return appendFloat(dst, float64(x))
	case uint:
		return appendFloat(dst, float64(x))
	case uint8:
		return appendFloat(dst, float64(x))
	case uint16:
		return appendFloat(dst, float64(x))
	case uint32:
		return appendFloat(dst, float64(x))
	case uint64:
		return appendFloat(dst, float64(x))
	case json.Number:
		return appendNumberText(dst, string(x))
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendCanonical(dst, x)
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendObject(dst, x, func(dst []byte, v any) ([]byte, error) { return appendValue(dst, v, depth+1) })
	case map[string]string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendObject(dst, x, appendString)
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendString(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrUnsupportedValue, err)
	}
	return appendCanonical(dst, raw)
}

// appendObject encodes m with its keys in canonical order, each value by
// appendVal.
func appendObject[V any](dst []byte, m map[string]V, appendVal func([]byte, V) ([]byte, error)) ([]byte, error) {
	dst = append(dst, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendString(dst, k); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, err = appendVal(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	return keys
}

// compareUTF16 orders two strings by their UTF-16 code units, as RFC 8785
// §3.2.3 requires. For valid UTF-8 this is byte order except where a
// supplementary-plane character (a surrogate pair, 0xD800–0xDBFF first) meets
// a BMP character in U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	if a[i] < 0x80 && b[i] < 0x80 {
		return int(a[i]) - int(b[i])
	}
	// Back up to the start of the rune in which the strings differ; the
	// prefix is shared so the rune starts at the same offset in both.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	ua, ub := utf16Lead(ra), utf16Lead(rb)
	if ua != ub {
		return int(ua) - int(ub)
	}
	// Same leading unit: both supplementary with the same high surrogate,
	// so code point order equals low surrogate order.
	return int(ra) - int(rb)
}

// utf16Lead is the first UTF-16 code unit of r.
func utf16Lead(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + ((r - 0x10000) >> 10)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with ECMAScript JSON.stringify
// escaping. s must be valid UTF-8.
func appendString(dst []byte, s string) ([]byte, error) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidString, i)
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), nil
}

// appendFloat appends f formatted as ECMAScript Number.prototype.toString
// (ECMA-262 Number::toString with radix 10).
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%w: %v", ErrInvalidNumber, f)
	}
	if f == 0 {
		return append(dst, '0'), nil // also -0
	}
	// Fast path: integers below 2^53 print as themselves.
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.AppendInt(dst, int64(f), 10), nil
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits: "d.ddde±xx".
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	var digits [17]byte
	k := 0
	pos := 0
	for ; e[pos] != 'e'; pos++ {
		if e[pos] != '.' {
			digits[k] = e[pos]
			k++
		}
	}
	exp, err := strconv.Atoi(string(e[pos+1:]))
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrInvalidNumber, f)
	}
	n := exp + 1 // the decimal point sits after n digits
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst, nil
}

// appendNumberText validates s as a JSON number and appends its canonical form.
func appendNumberText(dst []byte, s string) ([]byte, error) {
	if !validNumber(s) {
		return dst, fmt.Errorf("%w: bad number %q", ErrInvalidJSON, s)
	}
	// ParseFloat rounds to the nearest double and reports only overflow
	// (as ±Inf); underflow to zero is what ECMAScript does too.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%w: %q", ErrInvalidNumber, s)
	}
	return appendFloat(dst, f)
}

// validNumber reports whether s is exactly a JSON number (RFC 8259 §6).
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
