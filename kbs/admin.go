package kbs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/protocol"

	"github.com/sigil-attestation/sigil/internal/strictjson"
)

// requireAdmin runs the admin check for a built-in admin endpoint.
func (s *Server) requireAdmin(r *http.Request, endpoint string) *Error {
	if err := s.cfg.Admin.Authorize(r.Context(), r); err != nil {
		return newError(VariantAdminAuthAccess, fmt.Sprintf("admin access denied for endpoint %s: %v", endpoint, err), err)
	}
	return nil
}

func (s *Server) handleSetAttestationPolicy(w http.ResponseWriter, r *http.Request) *Error {
	if e := s.requireAdmin(r, "attestation-policy"); e != nil {
		return e
	}
	body, e := s.readBody(w, r)
	if e != nil {
		return e
	}
	var req struct {
		PolicyID *string `json:"policy_id"`
		Policy   *string `json:"policy"`
	}
	if err := strictjson.Unmarshal(body, &req); err != nil || req.PolicyID == nil || req.Policy == nil {
		if err == nil {
			err = errors.New("policy_id and policy are required")
		}
		return newError(VariantSerdeError, "Serialize/Deserialize failed", err)
	}
	if err := s.cfg.AS.SetPolicy(r.Context(), *req.PolicyID, *req.Policy); err != nil {
		detail := "Attestation error: Set Attestation Policy failed"
		if ipe, ok := errors.AsType[*attestation.InvalidPolicyError](err); ok {
			detail += ": " + ipe.Reason // a refused policy: tell the admin why
		}
		return newError(VariantAttestationError, detail, err)
	}
	s.log.Info("attestation policy set", "request_id", requestID(r.Context()), "policy_id", logSafe(*req.PolicyID))
	return nil
}

func (s *Server) handleGetReferenceValue(w http.ResponseWriter, r *http.Request, parts []string) *Error {
	if e := s.requireAdmin(r, "reference-value"); e != nil {
		return e
	}
	id := strings.Join(parts, "/")
	v, err := s.cfg.RVPS.Query(r.Context(), id)
	if err != nil {
		return newError(VariantRvpsError, "RVPS configuration failed: "+err.Error(), err)
	}
	if v == nil {
		return newError(VariantRvpsError, "RVPS configuration failed: reference value "+id+" not found", nil)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(v)
	return nil
}

func (s *Server) handleRegisterReferenceValue(w http.ResponseWriter, r *http.Request) *Error {
	if e := s.requireAdmin(r, "reference-value"); e != nil {
		return e
	}
	body, e := s.readBody(w, r)
	if e != nil {
		return e
	}
	if err := s.cfg.RVPS.Register(r.Context(), body); err != nil {
		return newError(VariantRvpsError, "RVPS configuration failed: "+err.Error(), err)
	}
	w.Header().Set("Content-Type", "application/json")
	return nil
}

func (s *Server) handleSetResourcePolicy(w http.ResponseWriter, r *http.Request) *Error {
	if e := s.requireAdmin(r, "resource-policy"); e != nil {
		return e
	}
	body, e := s.readBody(w, r)
	if e != nil {
		return e
	}
	var req struct {
		Policy json.RawMessage `json:"policy"`
	}
	if err := strictjson.Unmarshal(body, &req); err != nil {
		return newError(VariantParsePolicyError, "Failed to parse policy: "+err.Error(), err)
	}
	var b64 string
	if req.Policy == nil {
		return newError(VariantParsePolicyError, "Failed to parse policy: missing field `policy`", nil)
	}
	if err := json.Unmarshal(req.Policy, &b64); err != nil {
		return newError(VariantParsePolicyError, "Failed to parse policy: `policy` is not a string", err)
	}
	text, err := protocol.DecodePolicy(b64)
	if err != nil {
		return newError(VariantParsePolicyError, "Failed to parse policy: "+err.Error(), err)
	}
	if err := s.policy.set(r.Context(), string(text)); err != nil {
		return newError(VariantPolicyEngineError, "Policy engine error: "+err.Error(), err)
	}
	s.log.Info("resource policy set", "request_id", requestID(r.Context()))
	return nil
}

func (s *Server) handleListResourcePolicies(w http.ResponseWriter, r *http.Request) *Error {
	if e := s.requireAdmin(r, "resource-policy"); e != nil {
		return e
	}
	ids, err := s.policy.list(r.Context())
	if err != nil {
		return newError(VariantPolicyEngineError, "Policy engine error: "+err.Error(), err)
	}
	writeJSON(w, ids)
	return nil
}
