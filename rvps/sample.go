package rvps

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// sampleExtractor handles type "sample": the payload is base64 of a JSON
// object mapping reference-value names to values (any JSON), stored verbatim.
//
// Trustee decodes the payload with the standard alphabet and requires
// canonical padding. Sigil also accepts the URL-safe alphabet and unpadded
// input, so payloads produced by either kind of tool register.
type sampleExtractor struct{}

func (sampleExtractor) Extract(payload string) ([]ReferenceValue, error) {
	raw, err := decodeBase64(payload)
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("decode payload: not a JSON object")
	}
	var entries map[string]json.RawMessage
	if err := strictjson.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("decode payload JSON: %w", err)
	}
	out := make([]ReferenceValue, 0, len(entries))
	for name, value := range entries {
		out = append(out, ReferenceValue{Name: name, Value: value})
	}
	return out, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not. Mixing
// the two alphabets in one string is rejected.
func decodeBase64(s string) ([]byte, error) {
	urlSafe := strings.ContainsAny(s, "-_")
	padded := strings.HasSuffix(s, "=")
	var enc *base64.Encoding
	switch {
	case urlSafe && padded:
		enc = base64.URLEncoding
	case urlSafe:
		enc = base64.RawURLEncoding
	case padded:
		enc = base64.StdEncoding
	default:
		enc = base64.RawStdEncoding
	}
	return enc.Strict().DecodeString(s)
}
