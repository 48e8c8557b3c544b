package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Defaults of SetAttestationPolicy, as in Trustee's kbs-client.
const (
	DefaultPolicyType = "rego"
	DefaultPolicyID   = "default_cpu"
)

// Admin calls the KBS admin endpoints with a bearer token.
type Admin struct {
	t     *transport
	token string
}

// NewAdmin returns an admin client; adminToken "" sends anonymous requests
// (accepted only by a KBS whose admin mode allows everything).
func NewAdmin(baseURL string, adminToken string, opts Options) (*Admin, error) {
	t, err := newTransport(baseURL, opts)
	if err != nil {
		return nil, err
	}
	return &Admin{t: t, token: strings.TrimSpace(adminToken)}, nil
}

// call sends an admin request and returns the body of a 200 answer.
func (a *Admin) call(ctx context.Context, method, rel, contentType string, body []byte) ([]byte, error) {
	status, data, err := a.t.do(ctx, method, rel, contentType, body, a.token, maxResponse)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, newServerError(status, data)
	}
	return data, nil
}

func (a *Admin) postJSON(ctx context.Context, rel string, v any) error {
	body, err := marshalJSON(v)
	if err != nil {
		return err
	}
	_, err = a.call(ctx, http.MethodPost, rel, "application/json", body)
	return err
}

func resourcePath(path string) (string, error) {
	p := strings.TrimPrefix(path, "/")
	if p == "" || strings.ContainsAny(p, "?#") {
		return "", fmt.Errorf("invalid resource path %q", path)
	}
	return "resource/" + escapePath(p), nil
}

// SetResource stores data at path "repo/type/tag" (POST, raw bytes,
// Content-Type application/octet-stream).
func (a *Admin) SetResource(ctx context.Context, path string, data []byte) error {
	rel, err := resourcePath(path)
	if err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	_, err = a.call(ctx, http.MethodPost, rel, "application/octet-stream", data)
	return err
}

// DeleteResource deletes the resource at path.
func (a *Admin) DeleteResource(ctx context.Context, path string) error {
	rel, err := resourcePath(path)
	if err != nil {
		return err
	}
	_, err = a.call(ctx, http.MethodDelete, rel, "", nil)
	return err
}

// SetAttestationPolicy stores an attestation-service policy under id
// (default "default_cpu") with type policyType (default "rego").
func (a *Admin) SetAttestationPolicy(ctx context.Context, id, policyType string, policy []byte) error {
	if id == "" {
		id = DefaultPolicyID
	}
	if policyType == "" {
		policyType = DefaultPolicyType
	}
	return a.postJSON(ctx, "attestation-policy", struct {
		Type     string `json:"type"`
		PolicyID string `json:"policy_id"`
		Policy   string `json:"policy"`
	}{policyType, id, base64.RawURLEncoding.EncodeToString(policy)})
}

// SetResourcePolicy replaces the KBS resource policy (Rego text).
func (a *Admin) SetResourcePolicy(ctx context.Context, policy []byte) error {
	return a.postJSON(ctx, "resource-policy", struct {
		Policy string `json:"policy"`
	}{base64.RawURLEncoding.EncodeToString(policy)})
}

// ListResourcePolicies returns the ids of the stored resource policies.
func (a *Admin) ListResourcePolicies(ctx context.Context) ([]string, error) {
	body, err := a.call(ctx, http.MethodGet, "resource-policy", "", nil)
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal(body, &ids); err != nil {
		return nil, fmt.Errorf("list resource policies: response is not a JSON string array: %w", err)
	}
	return ids, nil
}

// GetReferenceValue returns the JSON value of reference value id (the id may
// contain '/').
func (a *Admin) GetReferenceValue(ctx context.Context, id string) (json.RawMessage, error) {
	if id == "" {
		return nil, errors.New("get reference value: empty id")
	}
	body, err := a.call(ctx, http.MethodGet, "reference-value/"+escapePath(id), "application/json", nil)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(body), nil
}

// RegisterReferenceValue posts an RVPS message
// ({"version","type","payload"} JSON) to the KBS.
func (a *Admin) RegisterReferenceValue(ctx context.Context, message []byte) error {
	if !json.Valid(message) {
		return errors.New("register reference value: message is not valid JSON")
	}
	_, err := a.call(ctx, http.MethodPost, "reference-value", "application/json", message)
	return err
}

// SetSampleReferenceValue registers {name: value} through the RVPS sample
// extractor: {"version":"0.1.0","type":"sample","payload":b64(JSON)}.
func (a *Admin) SetSampleReferenceValue(ctx context.Context, name string, value any) error {
	payload, err := marshalJSON(map[string]any{name: value})
	if err != nil {
		return fmt.Errorf("set sample reference value: %w", err)
	}
	msg, err := marshalJSON(struct {
		Version string `json:"version"`
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}{"0.1.0", "sample", base64.StdEncoding.EncodeToString(payload)})
	if err != nil {
		return err
	}
	return a.RegisterReferenceValue(ctx, msg)
}
