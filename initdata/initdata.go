// Package initdata parses CoCo init-data documents (TOML), computes their
// digest and derives the init_data_claims an attestation policy sees.
//
// A document looks like:
//
//	version = "0.1.0"
//	algorithm = "sha384"
//	[data]
//	"aa.toml" = '''…'''
//	"cdh.toml" = '''…'''
//	"policy.rego" = '''…'''
//
// The digest is taken over the exact bytes received; there is no
// canonicalisation, so any whitespace change yields a different digest.
package initdata

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Supported digest algorithms. Only these exact lowercase names are
// accepted, as in the Rust parsers: IANA spellings such as "sha-384" are
// rejected, and "sm3" (which kbs-types knows) is not supported.
const (
	SHA256 = "sha256"
	SHA384 = "sha384"
	SHA512 = "sha512"
)

// Document is a parsed init-data document.
type Document struct {
	Version   string
	Algorithm string
	// Data maps file names (e.g. "aa.toml", "cdh.toml", "policy.rego") to
	// their contents. It is never nil after Parse.
	Data map[string]string
}

// document is the TOML shape; pointers distinguish missing from empty.
type document struct {
	Version   *string           `toml:"version"`
	Algorithm *string           `toml:"algorithm"`
	Data      map[string]string `toml:"data"`
}

// Parse decodes a TOML init-data document. version and algorithm are
// required; algorithm must be one of sha256, sha384, sha512; data must be a
// table of strings. A missing data table yields an empty Data map. Unknown
// top-level keys are ignored.
func Parse(body []byte) (*Document, error) {
	var raw document
	if err := toml.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("initdata: parse TOML: %w", err)
	}
	if raw.Version == nil || *raw.Version == "" {
		return nil, errors.New("initdata: missing version")
	}
	if raw.Algorithm == nil {
		return nil, errors.New("initdata: missing algorithm")
	}
	if _, err := newHash(*raw.Algorithm); err != nil {
		return nil, err
	}
	data := raw.Data
	if data == nil {
		data = map[string]string{}
	}
	return &Document{Version: *raw.Version, Algorithm: *raw.Algorithm, Data: data}, nil
}

func newHash(algorithm string) (hash.Hash, error) {
	switch algorithm {
	case SHA256:
		return sha256.New(), nil
	case SHA384:
		return sha512.New384(), nil
	case SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("initdata: unsupported algorithm %q (want sha256, sha384 or sha512)", algorithm)
}

// Digest hashes the exact bytes of body with algorithm (sha256, sha384 or
// sha512).
func Digest(algorithm string, body []byte) ([]byte, error) {
	h, err := newHash(algorithm)
	if err != nil {
		return nil, err
	}
	h.Write(body)
	return h.Sum(nil), nil
}

// Keys of Data that Claims transforms.
const (
	keyAA     = "aa.toml"
	keyCDH    = "cdh.toml"
	keyPolicy = "policy.rego"
	// ClaimAgentPolicy is the claim that replaces "policy.rego" when its
	// policy_data can be extracted.
	ClaimAgentPolicy = "agent_policy_claims"
)

const policyDataMarker = "policy_data := {"

// Claims returns the init_data_claims of d: the Data map, where
//   - the values of "aa.toml" and "cdh.toml" are replaced by their TOML
//     document converted to JSON-compatible values when they parse (else they
//     stay strings);
//   - if "policy.rego" contains `policy_data := {`, the text from that `{` to
//     the end of the string is parsed as JSON into "agent_policy_claims" and
//     "policy.rego" is removed; if that JSON does not parse (e.g. trailing
//     rules after policy_data), "policy.rego" stays as a string.
//
// Numbers are json.Number (TOML integers keep full precision; TOML NaN and
// infinities become null), datetimes are strings in their TOML (RFC 3339)
// form, tables are map[string]any and arrays []any, so the result marshals to
// JSON and converts directly to Rego values.
func (d *Document) Claims() map[string]any {
	out := make(map[string]any, len(d.Data)+1)
	for k, v := range d.Data {
		out[k] = v
	}
	for _, k := range []string{keyAA, keyCDH} {
		text, ok := d.Data[k]
		if !ok {
			continue
		}
		var tree map[string]any
		if err := toml.Unmarshal([]byte(text), &tree); err == nil {
			out[k] = tomlToJSON(tree)
		}
	}
	if text, ok := d.Data[keyPolicy]; ok {
		if v, ok := extractPolicyData(text); ok {
			out[ClaimAgentPolicy] = v
			delete(out, keyPolicy)
		}
	}
	return out
}

// extractPolicyData parses the JSON that starts at the `{` of the first
// `policy_data := {` and runs to the end of text (trailing whitespace only).
func extractPolicyData(text string) (any, bool) {
	i := strings.Index(text, policyDataMarker)
	if i < 0 {
		return nil, false
	}
	src := text[i+len(policyDataMarker)-1:]
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	// Only JSON whitespace may follow: policy_data must be the final item.
	if strings.Trim(src[dec.InputOffset():], " \t\r\n") != "" {
		return nil, false
	}
	return v, true
}

// tomlToJSON converts a value decoded by go-toml into JSON-compatible values.
func tomlToJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = tomlToJSON(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = tomlToJSON(e)
		}
		return a
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case toml.LocalDateTime:
		return x.String()
	case toml.LocalDate:
		return x.String()
	case toml.LocalTime:
		return x.String()
	default:
		// string, bool
		return x
	}
}
