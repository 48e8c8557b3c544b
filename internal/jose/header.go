package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sigil-attestation/sigil/internal/jcs"
)

// header is a parsed JWE protected header, as the Rust client models it:
// `alg` and `enc` strings plus a map of the other members.
type header struct {
	alg, enc string
	other    map[string]any
	// aad is the header re-serialised the way serde_json writes the Rust
	// struct: alg, enc, then the other members with keys in byte order (at
	// every level), compact; integers stay integers and other numbers use
	// Rust's shortest float format.
	aad []byte
}

type epkFields struct{ crv, x, y string }

// epk returns the ephemeral public key members the Rust client reads.
func (h *header) epk() (epkFields, error) {
	raw, ok := h.other["epk"]
	if !ok {
		return epkFields{}, errors.New("protected header has no epk")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return epkFields{}, errors.New("epk is not an object")
	}
	var out epkFields
	for name, dst := range map[string]*string{"crv": &out.crv, "x": &out.x, "y": &out.y} {
		s, ok := m[name].(string)
		if !ok {
			return epkFields{}, fmt.Errorf("epk.%s is missing or not a string", name)
		}
		*dst = s
	}
	return out, nil
}

// parseHeader parses protected-header JSON. Beyond what serde_json checks it
// also rejects duplicate keys at any depth (serde keeps the last duplicate
// in nested maps).
func parseHeader(data []byte) (*header, error) {
	// jcs validates strictly: UTF-8, lone surrogates, duplicate keys,
	// numbers within double range, no trailing data.
	if _, err := jcs.Canonicalize(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	h := &header{other: m}
	for name, dst := range map[string]*string{"alg": &h.alg, "enc": &h.enc} {
		v, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("missing field `%s`", name)
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("field `%s` is not a string", name)
		}
		*dst = s
		delete(m, name)
	}
	aad := []byte(`{"alg":`)
	aad, err := jcs.Append(aad, h.alg)
	if err != nil {
		return nil, err
	}
	aad = append(aad, `,"enc":`...)
	if aad, err = jcs.Append(aad, h.enc); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(m) {
		aad = append(aad, ',')
		if aad, err = jcs.Append(aad, k); err != nil {
			return nil, err
		}
		aad = append(aad, ':')
		if aad, err = appendSerde(aad, m[k]); err != nil {
			return nil, err
		}
	}
	h.aad = append(aad, '}')
	return h, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Rust String order: bytes
	return keys
}

// appendSerde writes v (as decoded with UseNumber) the way serde_json writes
// a serde_json::Value without the preserve_order feature. Its string
// escaping is the same as JCS's.
func appendSerde(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = jcs.Append(dst, k); err != nil {
				return dst, err
			}
			dst = append(dst, ':')
			if dst, err = appendSerde(dst, x[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendSerde(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case json.Number:
		return appendSerdeNumber(dst, string(x))
	}
	return jcs.Append(dst, v) // string, bool, nil
}

// appendSerdeNumber re-emits a JSON number as serde_json does: integer
// literals that fit u64 (or i64 when negative, except -0) stay integers;
// everything else becomes an f64 written in ryu's format.
func appendSerdeNumber(dst []byte, text string) ([]byte, error) {
	if !strings.ContainsAny(text, ".eE") {
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			return strconv.AppendUint(dst, u, 10), nil
		}
		if i, err := strconv.ParseInt(text, 10, 64); err == nil && i != 0 {
			return strconv.AppendInt(dst, i, 10), nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return dst, fmt.Errorf("number %s out of range", text)
	}
	return appendRyu(dst, f), nil
}

// appendRyu formats a finite f the way Rust's ryu crate does (used by
// serde_json for f64): shortest round-trip digits, plain notation for
// decimal exponents from -5 to 15 with a ".0" on integral values, otherwise
// "d.ddde±x" without a '+'.
func appendRyu(dst []byte, f float64) []byte {
	if math.Signbit(f) {
		dst = append(dst, '-')
		f = -f
	}
	if f == 0 {
		return append(dst, "0.0"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	mant, expText, _ := bytes.Cut(e, []byte("e"))
	digits := bytes.ReplaceAll(mant, []byte("."), nil)
	exp, _ := strconv.Atoi(string(expText))
	length := len(digits)
	kk := exp + 1 // 10^(kk-1) <= f < 10^kk
	k := kk - length
	switch {
	case k >= 0 && kk <= 16:
		dst = append(dst, digits...)
		for range k {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	case kk > 0 && kk <= 16:
		dst = append(dst, digits[:kk]...)
		dst = append(dst, '.')
		return append(dst, digits[kk:]...)
	case kk > -5 && kk <= 0:
		dst = append(dst, '0', '.')
		for range -kk {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[0])
	if length > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	return strconv.AppendInt(dst, int64(kk-1), 10)
}
