package protocol

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// TeePubKey is the public key a TEE generated for receiving secrets. It is a
// JWK restricted to the members kbs-types keeps; any other member is dropped
// on parsing, which matters because the key is hashed into the report data.
type TeePubKey struct {
	Kty string // "RSA", "EC" or "AKP"
	Alg string
	// RSA
	N, E string
	// EC
	Crv, X, Y string
	// AKP (ML-KEM)
	Pub string
}

// Map returns the key as the JSON object kbs-types serialises, which is what
// runtime-data hashing and token claims use.
func (k TeePubKey) Map() map[string]any {
	switch k.Kty {
	case "RSA":
		return map[string]any{"kty": k.Kty, "alg": k.Alg, "n": k.N, "e": k.E}
	case "EC":
		return map[string]any{"kty": k.Kty, "crv": k.Crv, "alg": k.Alg, "x": k.X, "y": k.Y}
	case "AKP":
		return map[string]any{"kty": k.Kty, "alg": k.Alg, "pub": k.Pub}
	}
	return map[string]any{"kty": k.Kty}
}

// MarshalJSON emits the kbs-types member order.
func (k TeePubKey) MarshalJSON() ([]byte, error) {
	switch k.Kty {
	case "RSA":
		return json.Marshal(struct {
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
		}{k.Kty, k.Alg, k.N, k.E})
	case "EC":
		return json.Marshal(struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Alg string `json:"alg"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{k.Kty, k.Crv, k.Alg, k.X, k.Y})
	case "AKP":
		return json.Marshal(struct {
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			Pub string `json:"pub"`
		}{k.Kty, k.Alg, k.Pub})
	}
	return nil, fmt.Errorf("unknown key type %q", k.Kty)
}

// UnmarshalJSON parses a JWK tagged by kty and requires the members of that kty.
func (k *TeePubKey) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := strictjson.Unmarshal(b, &m); err != nil {
		return err
	}
	str := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", fmt.Errorf("missing field `%s`", name)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("field `%s`: expected a string", name)
		}
		return s, nil
	}
	kty, err := str("kty")
	if err != nil {
		return err
	}
	var out TeePubKey
	out.Kty = kty
	var fields map[string]*string
	switch kty {
	case "RSA":
		fields = map[string]*string{"alg": &out.Alg, "n": &out.N, "e": &out.E}
	case "EC":
		fields = map[string]*string{"crv": &out.Crv, "alg": &out.Alg, "x": &out.X, "y": &out.Y}
	case "AKP":
		fields = map[string]*string{"alg": &out.Alg, "pub": &out.Pub}
	default:
		return fmt.Errorf("unknown variant `%s`, expected one of `RSA`, `EC`, `AKP`", kty)
	}
	for name, dst := range fields {
		if *dst, err = str(name); err != nil {
			return err
		}
	}
	if out.Alg == "" {
		return errors.New("field `alg` is empty")
	}
	*k = out
	return nil
}
