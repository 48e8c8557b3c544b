package client

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"strings"

	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/protocol"
)

// Hash algorithm names of the protocol.
const (
	HashSHA256 = "sha256"
	HashSHA384 = "sha384"
	HashSHA512 = "sha512"
	HashSM3    = "sm3"
	// DefaultHash is used when the challenge selects no algorithm.
	DefaultHash = HashSHA384
)

// SupportedHashAlgorithms is what the client advertises in the /auth
// request's extra-params, as the Rust client does.
var supportedHashAlgorithms = []string{HashSHA256, HashSHA384, HashSHA512, HashSM3}

// SelectedHashAlgorithm returns the hash algorithm a challenge's extra-params
// select: the lower-cased "selected-hash-algorithm" string when extra-params
// is an object holding one, else DefaultHash. A non-string value or an
// unknown name is an error; "sm3" is recognised but not implemented.
func SelectedHashAlgorithm(extraParams json.RawMessage) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(extraParams, &obj); err != nil || obj == nil {
		return DefaultHash, nil // "", null, arrays, … → default
	}
	raw, ok := obj["selected-hash-algorithm"]
	if !ok {
		return DefaultHash, nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf("challenge extra-params: selected-hash-algorithm is not a string: %s", raw)
	}
	name = strings.ToLower(name)
	if _, err := newHash(name); err != nil {
		return "", fmt.Errorf("challenge extra-params: %w", err)
	}
	return name, nil
}

func newHash(name string) (hash.Hash, error) {
	switch name {
	case HashSHA256:
		return sha256.New(), nil
	case HashSHA384:
		return sha512.New384(), nil
	case HashSHA512:
		return sha512.New(), nil
	case HashSM3:
		return nil, fmt.Errorf("hash algorithm %q is not supported by this client", name)
	}
	return nil, fmt.Errorf("unknown hash algorithm %q", name)
}

func digestJCS(alg string, v any) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	data, err := jcs.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonicalise runtime data: %w", err)
	}
	h.Write(data)
	return h.Sum(nil), nil
}

// DeviceReportData returns the report data handed to additional (device)
// attesters: alg(JCS({"nonce", "tee-pubkey"})).
func DeviceReportData(alg string, rd protocol.RuntimeData) ([]byte, error) {
	return digestJCS(alg, map[string]any{
		"nonce":      rd.Nonce,
		"tee-pubkey": rd.TeePubKey.Map(),
	})
}

// PrimaryReportData returns the report data handed to the primary attester:
// alg(JCS({"tee-pubkey", "nonce", "additional-evidence"})), where
// additionalEvidence is the additional_evidence string ("" without devices).
func PrimaryReportData(alg string, rd protocol.RuntimeData, additionalEvidence string) ([]byte, error) {
	return digestJCS(alg, map[string]any{
		"nonce":               rd.Nonce,
		"tee-pubkey":          rd.TeePubKey.Map(),
		"additional-evidence": additionalEvidence,
	})
}
