package config

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Error is one invalid value in a configuration. Key is the full dotted key
// (array elements as "plugins[1].name").
type Error struct {
	Key    string
	Reason string
	Err    error // underlying cause, if any
}

func (e *Error) Error() string { return "config: " + e.Key + ": " + e.Reason }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Warning is a non-fatal finding, such as an unknown key that is ignored.
type Warning struct {
	Key     string
	Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// decoder accumulates every error and warning of one parse, so a user sees
// all problems at once.
type decoder struct {
	errs     []error
	warnings []Warning
}

func (d *decoder) fail(key, format string, args ...any) {
	d.errs = append(d.errs, &Error{Key: key, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) failErr(key string, err error, format string, args ...any) {
	d.errs = append(d.errs, &Error{Key: key, Reason: fmt.Sprintf(format, args...), Err: err})
}

func (d *decoder) warn(key, format string, args ...any) {
	d.warnings = append(d.warnings, Warning{Key: key, Message: fmt.Sprintf(format, args...)})
}

// table is one decoded table (object) with the keys read so far.
type table struct {
	d    *decoder
	path string
	m    map[string]any
	seen map[string]bool
}

func (d *decoder) newTable(path string, m map[string]any) *table {
	return &table{d: d, path: path, m: m, seen: make(map[string]bool)}
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (t *table) key(k string) string { return joinKey(t.path, k) }

func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

// raw returns the value of k and marks it as known.
func (t *table) raw(k string) (any, bool) {
	v, ok := t.m[k]
	if ok {
		t.seen[k] = true
	}
	return v, ok
}

// dead marks keys that Trustee no longer reads: they are reported with a
// specific warning instead of the generic one.
func (t *table) dead(keys ...string) {
	for _, k := range keys {
		if _, ok := t.m[k]; ok && !t.seen[k] {
			t.seen[k] = true
			t.d.warn(t.key(k), "obsolete Trustee key, no longer used; ignored")
		}
	}
}

// finish warns about every key that was not read.
func (t *table) finish() {
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		if !t.seen[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.d.warn(t.key(k), "unknown key, ignored")
	}
}

// rest returns the unread keys as a generic map and marks them read.
func (t *table) rest() map[string]any {
	var out map[string]any
	for k, v := range t.m {
		if t.seen[k] {
			continue
		}
		if out == nil {
			out = make(map[string]any)
		}
		out[k] = v
		t.seen[k] = true
	}
	return out
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any: // YAML with non-string keys
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return "integer"
	case float32, float64:
		return "float"
	case []any:
		return "array"
	case map[string]any, map[any]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

// sub returns the sub-table k, or nil when absent.
func (t *table) sub(k string) *table {
	v, ok := t.raw(k)
	if !ok {
		return nil
	}
	m, ok := asMap(v)
	if !ok {
		t.d.fail(t.key(k), "expected a table, found %s", typeName(v))
		return nil
	}
	return t.d.newTable(t.key(k), m)
}

// subs returns the array of tables k (nil when absent).
func (t *table) subs(k string) []*table {
	v, ok := t.raw(k)
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		t.d.fail(t.key(k), "expected an array of tables, found %s", typeName(v))
		return nil
	}
	out := make([]*table, 0, len(arr))
	for i, e := range arr {
		key := fmt.Sprintf("%s[%d]", t.key(k), i)
		m, ok := asMap(e)
		if !ok {
			t.d.fail(key, "expected a table, found %s", typeName(e))
			continue
		}
		out = append(out, t.d.newTable(key, m))
	}
	return out
}

// str reads a string. Like Trustee's config loader, scalars of other types
// are converted to their text form.
func (t *table) str(k string, dst *string) bool {
	v, ok := t.raw(k)
	if !ok {
		return false
	}
	s, ok := scalarString(v)
	if !ok {
		t.d.fail(t.key(k), "expected a string, found %s", typeName(v))
		return false
	}
	*dst = s
	return true
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	}
	return "", false
}

// boolean reads a bool; the strings "true" and "false" are accepted too.
func (t *table) boolean(k string, dst *bool) bool {
	v, ok := t.raw(k)
	if !ok {
		return false
	}
	switch x := v.(type) {
	case bool:
		*dst = x
		return true
	case string:
		switch strings.ToLower(x) {
		case "true":
			*dst = true
			return true
		case "false":
			*dst = false
			return true
		}
	}
	t.d.fail(t.key(k), "expected a boolean, found %s %v", typeName(v), v)
	return false
}

// integer reads an integer within [lo, hi]; decimal strings are accepted.
func (t *table) integer(k string, lo, hi int64, dst *int64) bool {
	v, ok := t.raw(k)
	if !ok {
		return false
	}
	n, ok := toInt(v)
	if !ok {
		t.d.fail(t.key(k), "expected an integer, found %s %v", typeName(v), v)
		return false
	}
	if n < lo || n > hi {
		t.d.fail(t.key(k), "value %d out of range [%d, %d]", n, lo, hi)
		return false
	}
	*dst = n
	return true
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// strs reads an array of strings.
func (t *table) strs(k string, dst *[]string) bool {
	v, ok := t.raw(k)
	if !ok {
		return false
	}
	arr, ok := v.([]any)
	if !ok {
		t.d.fail(t.key(k), "expected an array of strings, found %s", typeName(v))
		return false
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		s, ok := scalarString(e)
		if !ok {
			t.d.fail(fmt.Sprintf("%s[%d]", t.key(k), i), "expected a string, found %s", typeName(e))
			return false
		}
		out = append(out, s)
	}
	*dst = out
	return true
}
