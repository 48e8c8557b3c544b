// Package protocol holds the wire types of the KBS attestation protocol
// (RCAR, version 0.4.0) as the CoCo guest components and Trustee speak it.
//
// Field names, casing and optionality follow kbs-types 0.18. Types here carry
// no behaviour beyond JSON (de)serialisation and validation of their own shape.
package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// Version is the only protocol version Sigil's KBS accepts.
const Version = "0.4.0"

// Tee names (kbs-types serde names).
const (
	TeeAzSnpVtpm    = "az-snp-vtpm"
	TeeAzTdxVtpm    = "az-tdx-vtpm"
	TeeNvidia       = "nvidia"
	TeeSgx          = "sgx"
	TeeSnp          = "snp"
	TeeTdx          = "tdx"
	TeeCca          = "cca"
	TeeCsv          = "csv"
	TeeSe           = "se"
	TeeHygonDcu     = "hygondcu"
	TeeTpm          = "tpm"
	TeeSample       = "sample"
	TeeSampleDevice = "sampledevice"
)

// KnownTees lists every tee name the protocol defines.
var knownTees = map[string]bool{
	TeeAzSnpVtpm: true, TeeAzTdxVtpm: true, TeeNvidia: true, TeeSgx: true, TeeSnp: true,
	TeeTdx: true, TeeCca: true, TeeCsv: true, TeeSe: true, TeeHygonDcu: true, TeeTpm: true,
	TeeSample: true, TeeSampleDevice: true,
}

// IsKnownTee reports whether name is a tee name of the protocol.
func IsKnownTee(name string) bool { return knownTees[name] }

// IsDeviceTee reports whether name is a device TEE (a GPU, DCU, DPU or
// their sample stand-in). A device's evidence attests the device, not the
// confidential VM that holds the TEE key, so it may only appear in
// additional_evidence, never as the primary evidence of /auth and /attest.
func IsDeviceTee(name string) bool {
	switch name {
	case TeeNvidia, TeeSampleDevice, TeeHygonDcu, "nvidia-dpu":
		return true
	}
	return false
}

// Request is the body of POST /kbs/v0/auth.
type Request struct {
	Version     string          `json:"version"`
	Tee         string          `json:"tee"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

// UnmarshalJSON requires all three members, as kbs-types does.
func (r *Request) UnmarshalJSON(b []byte) error {
	var raw struct {
		Version     *string         `json:"version"`
		Tee         *string         `json:"tee"`
		ExtraParams json.RawMessage `json:"extra-params"`
	}
	if err := strictjson.Unmarshal(b, &raw); err != nil {
		return err
	}
	switch {
	case raw.Version == nil:
		return errors.New("missing field `version`")
	case raw.Tee == nil:
		return errors.New("missing field `tee`")
	case raw.ExtraParams == nil:
		return errors.New("missing field `extra-params`")
	}
	if !IsKnownTee(*raw.Tee) {
		return fmt.Errorf("unknown variant `%s`", *raw.Tee)
	}
	r.Version, r.Tee, r.ExtraParams = *raw.Version, *raw.Tee, raw.ExtraParams
	return nil
}

// Challenge is the response of POST /kbs/v0/auth.
type Challenge struct {
	Nonce       string          `json:"nonce"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

// InitData is the optional init-data carried in an Attestation.
type InitData struct {
	Format string `json:"format"`
	Body   string `json:"body"`
}

// RuntimeData is what the TEE binds into its report data.
type RuntimeData struct {
	Nonce     string    `json:"nonce"`
	TeePubKey TeePubKey `json:"tee-pubkey"`
}

// CompositeEvidence is the tee-evidence member of an Attestation.
type CompositeEvidence struct {
	PrimaryEvidence json.RawMessage `json:"primary_evidence"`
	// AdditionalEvidence is a JSON string holding a map tee name → evidence,
	// or "" when there are no additional devices. It is hashed verbatim.
	AdditionalEvidence string `json:"additional_evidence"`
}

// Attestation is the body of POST /kbs/v0/attest.
type Attestation struct {
	InitData    *InitData         `json:"init-data"`
	RuntimeData RuntimeData       `json:"runtime-data"`
	TeeEvidence CompositeEvidence `json:"tee-evidence"`
}

// UnmarshalJSON checks that the required members are present.
func (a *Attestation) UnmarshalJSON(b []byte) error {
	var raw struct {
		InitData    *InitData       `json:"init-data"`
		RuntimeData json.RawMessage `json:"runtime-data"`
		TeeEvidence json.RawMessage `json:"tee-evidence"`
	}
	if err := strictjson.Unmarshal(b, &raw); err != nil {
		return err
	}
	if isNull(raw.RuntimeData) {
		return errors.New("missing field `runtime-data`")
	}
	if isNull(raw.TeeEvidence) {
		return errors.New("missing field `tee-evidence`")
	}
	var rd struct {
		Nonce     *string         `json:"nonce"`
		TeePubKey json.RawMessage `json:"tee-pubkey"`
	}
	if err := strictjson.Unmarshal(raw.RuntimeData, &rd); err != nil {
		return fmt.Errorf("runtime-data: %w", err)
	}
	if rd.Nonce == nil {
		return errors.New("runtime-data: missing field `nonce`")
	}
	if isNull(rd.TeePubKey) {
		return errors.New("runtime-data: missing field `tee-pubkey`")
	}
	var key TeePubKey
	if err := strictjson.Unmarshal(rd.TeePubKey, &key); err != nil {
		return fmt.Errorf("runtime-data: tee-pubkey: %w", err)
	}
	var ev struct {
		Primary    json.RawMessage `json:"primary_evidence"`
		Additional *string         `json:"additional_evidence"`
	}
	if err := strictjson.Unmarshal(raw.TeeEvidence, &ev); err != nil {
		return fmt.Errorf("tee-evidence: %w", err)
	}
	if ev.Primary == nil {
		return errors.New("tee-evidence: missing field `primary_evidence`")
	}
	if ev.Additional == nil {
		return errors.New("tee-evidence: missing field `additional_evidence`")
	}
	if raw.InitData != nil && raw.InitData.Format == "" {
		return errors.New("init-data: missing field `format`")
	}
	a.InitData = raw.InitData
	a.RuntimeData = RuntimeData{Nonce: *rd.Nonce, TeePubKey: key}
	a.TeeEvidence = CompositeEvidence{PrimaryEvidence: ev.Primary, AdditionalEvidence: *ev.Additional}
	return nil
}

func isNull(b json.RawMessage) bool { return len(b) == 0 || string(b) == "null" }

// AttestResponse is the body returned by POST /kbs/v0/attest.
type AttestResponse struct {
	Token string `json:"token"`
}

// ErrorInformation is the problem body of every KBS error response.
type ErrorInformation struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// ErrorTypePrefix is prepended to the error variant name in ErrorInformation.Type.
const ErrorTypePrefix = "https://github.com/confidential-containers/kbs/errors/"

// Response is a flattened JWE JSON serialisation (the resource response).
type Response struct {
	Protected    string `json:"protected"`
	EncryptedKey string `json:"encrypted_key"`
	IV           string `json:"iv"`
	Ciphertext   string `json:"ciphertext"`
	Tag          string `json:"tag"`
	AAD          string `json:"aad,omitempty"`
}

// DecodePolicy decodes a policy as the admin API carries it: base64url
// without padding. Like Trustee's decoder, it refuses padding, characters
// outside the URL-safe alphabet, line breaks and non-zero trailing bits.
func DecodePolicy(s string) ([]byte, error) {
	// Go's decoder skips CR and LF anywhere in the input; Rust's does not.
	if strings.ContainsAny(s, "\r\n=") {
		return nil, errors.New("policy must be unpadded base64url (RFC 4648 §5) without line breaks")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("policy is not unpadded base64url: %w", err)
	}
	return b, nil
}
