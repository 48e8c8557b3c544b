package ear

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSON member names of an EAR appraisal (submodule).
const (
	KeyStatus            = "ear.status"
	KeyTrustVector       = "ear.trustworthiness-vector"
	KeyPolicyID          = "ear.appraisal-policy-id"
	KeyAnnotatedEvidence = "ear.veraison.annotated-evidence"
)

func isReservedSubmodKey(k string) bool {
	switch k {
	case KeyStatus, KeyTrustVector, KeyPolicyID, KeyAnnotatedEvidence:
		return true
	}
	return false
}

// Submod is one appraisal in an EAR ("submods.<name>").
type Submod struct {
	// Status is "ear.status"; when empty, TrustVector.Status() is used.
	Status Status
	// TrustVector is "ear.trustworthiness-vector".
	TrustVector TrustVector
	// PolicyID is "ear.appraisal-policy-id" (the requested id, e.g. "default").
	PolicyID string
	// AnnotatedEvidence is "ear.veraison.annotated-evidence" (the policy input).
	AnnotatedEvidence map[string]any
	// Extensions are extra members keyed by their name (e.g.
	// "ear.trustee.identifiers"); nil values are omitted.
	Extensions map[string]any
}

// EffectiveStatus returns Status, or the vector's status when Status is empty.
func (s *Submod) EffectiveStatus() Status {
	if s.Status == "" {
		return s.TrustVector.Status()
	}
	return s.Status
}

func (s *Submod) validate() error {
	if s.Status != "" && !s.Status.Valid() {
		return fmt.Errorf("ear: unknown status %q", s.Status)
	}
	for k := range s.Extensions {
		if k == "" || isReservedSubmodKey(k) {
			return fmt.Errorf("ear: extension name %q is reserved or empty", k)
		}
	}
	return nil
}

// encodeTo writes the submodule object to buf. enc must write to buf and not
// escape HTML.
func (s *Submod) encodeTo(buf *bytes.Buffer, enc *json.Encoder) error {
	buf.WriteString(`{"` + KeyStatus + `":"`)
	buf.WriteString(string(s.EffectiveStatus()))
	buf.WriteString(`","` + KeyTrustVector + `":`)
	buf.Write(s.TrustVector.appendJSON(buf.AvailableBuffer()))
	buf.WriteString(`,"` + KeyPolicyID + `":`)
	if err := encodeValue(buf, enc, s.PolicyID); err != nil {
		return err
	}
	buf.WriteString(`,"` + KeyAnnotatedEvidence + `":`)
	ae := any(s.AnnotatedEvidence)
	if s.AnnotatedEvidence == nil {
		ae = map[string]any{}
	}
	if err := encodeValue(buf, enc, ae); err != nil {
		return fmt.Errorf("ear: annotated evidence: %w", err)
	}
	for _, k := range sortedKeys(s.Extensions) {
		v := s.Extensions[k]
		if v == nil {
			continue
		}
		buf.WriteByte(',')
		if err := encodeValue(buf, enc, k); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := encodeValue(buf, enc, v); err != nil {
			return fmt.Errorf("ear: extension %q: %w", k, err)
		}
	}
	buf.WriteByte('}')
	return nil
}

// encodeValue encodes v with enc (which appends a newline) and drops the
// trailing newline.
func encodeValue(buf *bytes.Buffer, enc *json.Encoder, v any) error {
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// MarshalJSON encodes the submodule with the EAR member names.
func (s Submod) MarshalJSON() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := s.encodeTo(&buf, enc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a submodule; members other than the four standard
// ones become Extensions.
func (s *Submod) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("ear: submod: %w", err)
	}
	*s = Submod{}
	if raw, ok := m[KeyStatus]; ok {
		var st string
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("ear: %s: %w", KeyStatus, err)
		}
		var err error
		if s.Status, err = ParseStatus(st); err != nil {
			return err
		}
	}
	if raw, ok := m[KeyTrustVector]; ok {
		if err := s.TrustVector.UnmarshalJSON(raw); err != nil {
			return err
		}
	}
	if raw, ok := m[KeyPolicyID]; ok {
		if err := json.Unmarshal(raw, &s.PolicyID); err != nil {
			return fmt.Errorf("ear: %s: %w", KeyPolicyID, err)
		}
	}
	if raw, ok := m[KeyAnnotatedEvidence]; ok {
		if err := json.Unmarshal(raw, &s.AnnotatedEvidence); err != nil {
			return fmt.Errorf("ear: %s: %w", KeyAnnotatedEvidence, err)
		}
	}
	for k, raw := range m {
		if isReservedSubmodKey(k) {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("ear: extension %q: %w", k, err)
		}
		if s.Extensions == nil {
			s.Extensions = make(map[string]any)
		}
		s.Extensions[k] = v
	}
	return nil
}

// VerifierID is "ear.verifier-id".
type VerifierID struct {
	Developer string `json:"developer"`
	Build     string `json:"build"`
}

// Payload is the decoded claim set of an EAR token.
type Payload struct {
	Profile    string            `json:"eat_profile"`
	IssuedAt   int64             `json:"iat"`
	VerifierID VerifierID        `json:"ear.verifier-id"`
	Submods    map[string]Submod `json:"submods"`
	Expiry     int64             `json:"exp"`
	Issuer     string            `json:"iss"`
}
