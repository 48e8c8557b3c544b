package tokenverify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sigil-attestation/sigil/protocol"
)

// defaultTeeKeyPaths are the JSON pointers searched for the TEE public key
// after the configured extra paths, in order.
var defaultTeeKeyPaths = [...]string{
	"/tdx/attester_runtime_data/tee-pubkey",
	"/tdx/attester_user_data/tee-pubkey",
	"/customized_claims/runtime_data/tee-pubkey",
	"/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey",
	"/tee-pubkey",
}

// DefaultTeeKeyPaths returns the built-in TEE public key pointers in search order.
func DefaultTeeKeyPaths() []string { return defaultTeeKeyPaths[:] }

// ErrNoTeePubKey is returned when no pointer resolves in the claims.
var ErrNoTeePubKey = errors.New("no TEE public key found in the token claims")

// TeePubKey extracts the TEE public key from verified token claims. The
// first of extraPaths and then DefaultTeeKeyPaths (RFC 6901 JSON pointers)
// that resolves to a non-null value wins; that value must be a valid JWK.
func TeePubKey(claims map[string]any, extraPaths []string) (protocol.TeePubKey, error) {
	try := func(ptr string) (protocol.TeePubKey, bool, error) {
		val, ok, err := Lookup(claims, ptr)
		if err != nil || !ok || val == nil {
			return protocol.TeePubKey{}, false, err
		}
		raw, err := json.Marshal(val)
		if err != nil {
			return protocol.TeePubKey{}, true, fmt.Errorf("tee-pubkey at %s: %w", ptr, err)
		}
		var key protocol.TeePubKey
		if err := json.Unmarshal(raw, &key); err != nil {
			return protocol.TeePubKey{}, true, fmt.Errorf("tee-pubkey at %s: %w", ptr, err)
		}
		return key, true, nil
	}
	for _, list := range [2][]string{extraPaths, defaultTeeKeyPaths[:]} {
		for _, p := range list {
			if k, ok, err := try(p); ok || err != nil {
				return k, err
			}
		}
	}
	return protocol.TeePubKey{}, ErrNoTeePubKey
}

// splitPointer splits an RFC 6901 pointer into unescaped reference tokens.
func splitPointer(ptr string) ([]string, error) {
	if ptr == "" {
		return nil, nil
	}
	if ptr[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q must start with '/'", ptr)
	}
	parts := strings.Split(ptr[1:], "/")
	for i, p := range parts {
		if !strings.Contains(p, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			if p[j] != '~' {
				b.WriteByte(p[j])
				continue
			}
			if j+1 >= len(p) || (p[j+1] != '0' && p[j+1] != '1') {
				return nil, fmt.Errorf("JSON pointer %q: invalid escape", ptr)
			}
			if p[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		parts[i] = b.String()
	}
	return parts, nil
}

// Lookup resolves an RFC 6901 JSON pointer in decoded JSON (maps, slices).
// ok is false when the pointer does not resolve; err reports a malformed
// pointer.
func Lookup(doc any, ptr string) (val any, ok bool, err error) {
	parts, err := splitPointer(ptr)
	if err != nil {
		return nil, false, err
	}
	cur := doc
	for _, p := range parts {
		switch c := cur.(type) {
		case map[string]any:
			if cur, ok = c[p]; !ok {
				return nil, false, nil
			}
		case []any:
			if p == "" || (len(p) > 1 && p[0] == '0') {
				return nil, false, nil
			}
			idx, err := strconv.Atoi(p)
			if err != nil || idx < 0 || idx >= len(c) || p[0] == '+' {
				return nil, false, nil
			}
			cur = c[idx]
		default:
			return nil, false, nil
		}
	}
	return cur, true, nil
}
