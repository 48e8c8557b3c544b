package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// tokenTimes holds the validity claims of an attestation token.
type tokenTimes struct {
	exp, nbf *int64
}

// parseTokenTimes reads the payload of a JWT the way the Rust client does:
// the second '.'-separated segment, base64url without padding, a JSON object
// whose exp/nbf/iat are non-negative integers and whose iss/sub/jti/nonce are
// strings when present and aud a string or string array. The signature is
// not verified (the KBS verifies it).
func parseTokenTimes(token string) (tokenTimes, error) {
	parts := strings.Split(token, ".")
	if len(parts) < 2 {
		return tokenTimes{}, errors.New("token: not a JWT (no payload segment)")
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return tokenTimes{}, fmt.Errorf("token: payload is not base64url without padding: %w", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return tokenTimes{}, errors.New("token: payload is not a JSON object")
	}
	var out tokenTimes
	for _, name := range []string{"exp", "nbf", "iat"} {
		raw, ok := claims[name]
		if !ok || string(raw) == "null" {
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 63)
		if err != nil {
			return tokenTimes{}, fmt.Errorf("token: claim %q is not a non-negative integer", name)
		}
		n := int64(v)
		switch name {
		case "exp":
			out.exp = &n
		case "nbf":
			out.nbf = &n
		}
	}
	for _, name := range []string{"iss", "sub", "jti", "nonce"} {
		if raw, ok := claims[name]; ok && string(raw) != "null" {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return tokenTimes{}, fmt.Errorf("token: claim %q is not a string", name)
			}
		}
	}
	if raw, ok := claims["aud"]; ok && string(raw) != "null" {
		var s string
		var l []string
		if json.Unmarshal(raw, &s) != nil && json.Unmarshal(raw, &l) != nil {
			return tokenTimes{}, errors.New("token: claim \"aud\" is neither a string nor a string array")
		}
	}
	return out, nil
}

// valid reports whether the token may be used at now: exp ≥ now and
// nbf ≤ now; absent claims count as valid.
func (t tokenTimes) valid(now time.Time) bool {
	s := now.Unix()
	if t.exp != nil && *t.exp < s {
		return false
	}
	if t.nbf != nil && *t.nbf > s {
		return false
	}
	return true
}
