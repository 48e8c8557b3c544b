package kbs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sigil-attestation/sigil/internal/jose"
	"github.com/sigil-attestation/sigil/kbs/tokenverify"
	"github.com/sigil-attestation/sigil/policy"
	"github.com/sigil-attestation/sigil/storage"
)

// resourcePolicyKey is where the resource policy lives in the kbs namespace.
const resourcePolicyKey = "resource-policy.rego"

// resourcePolicy keeps the compiled resource policy, recompiling when the
// stored text changes (possibly written by another replica).
type resourcePolicy struct {
	store    storage.Store
	ttl      time.Duration // see Config.PolicyCacheTTL
	opts     policy.Options
	now      func() time.Time
	compiled atomic.Pointer[compiledResource]
}

type compiledResource struct {
	text    string
	policy  *policy.Resource
	checked time.Time
}

func (p *resourcePolicy) init(ctx context.Context) error {
	err := p.store.Create(ctx, resourcePolicyKey, []byte(policy.ResourceDefault))
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("kbs: storing the default resource policy: %w", err)
	}
	return nil
}

func (p *resourcePolicy) set(ctx context.Context, text string) error {
	c, err := policy.CompileResourceWith(text, p.opts)
	if err != nil {
		return err
	}
	if err := p.store.Set(ctx, resourcePolicyKey, []byte(text)); err != nil {
		return err
	}
	p.compiled.Store(&compiledResource{text: text, policy: c, checked: p.now()})
	return nil
}

func (p *resourcePolicy) get(ctx context.Context) (*policy.Resource, error) {
	now := p.now()
	cached := p.compiled.Load()
	if cached != nil && p.ttl > 0 {
		if age := now.Sub(cached.checked); age >= 0 && age < p.ttl {
			return cached.policy, nil
		}
	}
	text, err := p.store.Get(ctx, resourcePolicyKey)
	if err != nil {
		return nil, fmt.Errorf("loading resource policy: %w", err)
	}
	if cached != nil && cached.text == string(text) {
		p.compiled.Store(&compiledResource{text: cached.text, policy: cached.policy, checked: now})
		return cached.policy, nil
	}
	c, err := policy.CompileResourceWith(string(text), p.opts)
	if err != nil {
		return nil, fmt.Errorf("stored resource policy does not compile: %w", err)
	}
	p.compiled.Store(&compiledResource{text: string(text), policy: c, checked: now})
	return c, nil
}

// invalidate makes the next request re-read the stored policy (recompiling
// only if its text changed).
func (p *resourcePolicy) invalidate() {
	if c := p.compiled.Load(); c != nil {
		p.compiled.Store(&compiledResource{text: c.text, policy: c.policy})
	}
}

func (p *resourcePolicy) list(ctx context.Context) ([]string, error) {
	keys, err := p.store.List(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if id, ok := strings.CutSuffix(k, ".rego"); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// handlePlugin dispatches to a plugin: admin operations after the admin
// check, workload operations after token verification and the resource policy.
func (s *Server) handlePlugin(w http.ResponseWriter, r *http.Request, name string, parts []string) *Error {
	ctx := r.Context()
	p, ok := s.cfg.Plugins[name]
	if !ok || name == "" {
		return errPluginNotFound(name)
	}
	body, e := s.readBody(w, r)
	if e != nil {
		return e
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			query[k] = v[len(v)-1]
		}
	}
	preq := &PluginRequest{Method: r.Method, Path: parts, Query: query, Body: body}
	if p.RequiresAdmin(preq) {
		if err := s.cfg.Admin.Authorize(ctx, r); err != nil {
			return newError(VariantAdminAuthInitialization, "failed to initialize [admin] configuration: "+err.Error(), err)
		}
		out, err := p.Handle(ctx, preq)
		if err != nil {
			return newError(VariantPluginInternalError, "Plugin internal error", err)
		}
		if name == "resource" {
			s.metrics.resourceWrite(r.Method, strings.Join(parts, "/"))
		}
		s.log.Info("admin plugin call", "request_id", requestID(ctx), "plugin", logSafe(name), "method", r.Method, "path", logSafe(strings.Join(parts, "/")))
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(out)
		return nil
	}

	claims, e := s.verifiedClaims(r)
	if e != nil {
		return e
	}
	rp, err := s.policy.get(ctx)
	if err != nil {
		s.metrics.policyErrors.Inc()
		return newError(VariantPolicyEngineError, "Policy engine error: "+err.Error(), err)
	}
	s.metrics.policyEvaluations.Inc()
	data := policy.ResourceData{Plugin: name, ResourcePath: parts, Query: query}
	allow, err := rp.Allow(ctx, claims, data)
	if err != nil {
		s.metrics.policyErrors.Inc()
		return newError(VariantPolicyEngineError, "Policy engine error: "+err.Error(), err)
	}
	if !allow {
		s.metrics.policyViolations.Inc()
		s.explainDenial(ctx, claims, data)
		return newError(VariantPolicyDeny, "Access denied by policy", nil)
	}
	s.metrics.policyApprovals.Inc()
	preq.InitDataClaims = initDataClaims(claims)
	out, err := p.Handle(ctx, preq)
	if err != nil {
		return newError(VariantPluginInternalError, "Plugin internal error", err)
	}
	if name == "resource" && r.Method == http.MethodGet {
		s.metrics.resourceReads.WithLabelValues(strings.Join(parts, "/")).Inc()
	}
	if !p.Encrypted(preq) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(out)
		return nil
	}
	key, err := tokenverify.TeePubKey(claims, s.cfg.ExtraTeeKeyPaths)
	if err != nil {
		return newError(VariantJweError, "JWE failed", err)
	}
	if key.Kty == "RSA" && key.Alg == "RSA1_5" {
		s.log.Warn("encrypting to an RSA1_5 TEE key; RSA1_5 is deprecated", "request_id", requestID(ctx))
	}
	jwe, err := jose.Encrypt(s.cfg.Rand, key, out)
	if err != nil {
		return newError(VariantJweError, "JWE failed", err)
	}
	s.log.Debug("resource released", "request_id", requestID(ctx), "plugin", logSafe(name), "path", logSafe(strings.Join(parts, "/")))
	writeJSON(w, jwe)
	return nil
}

// verifiedClaims finds the attestation token (attested session first, then
// Authorization: Bearer) and verifies it.
func (s *Server) verifiedClaims(r *http.Request) (map[string]any, *Error) {
	ctx := r.Context()
	token, source := "", ""
	if c, err := r.Cookie(SessionCookie); err == nil {
		sess, err := s.sessions.get(ctx, c.Value, false)
		switch {
		case err == nil && sess.attested():
			token, source = sess.Token, "session"
		case errors.Is(err, storage.ErrUnavailable):
			// Not "no token": the session may exist; a retry may succeed.
			return nil, newError(VariantStorageUnavailable, "Storage backend unavailable; retry later", err)
		}
	}
	if token == "" {
		if h := r.Header.Get("Authorization"); h != "" {
			if t, ok := strings.CutPrefix(h, "Bearer "); ok && strings.TrimSpace(t) != "" {
				token, source = strings.TrimSpace(t), "bearer"
			}
		}
	}
	if token == "" {
		return nil, newError(VariantTokenNotFound, "Attestation Token not found", nil)
	}
	claims, err := s.cfg.Tokens.Verify(ctx, token)
	if err != nil {
		return nil, newError(VariantTokenVerifierError, "Token Verifier error",
			fmt.Errorf("%s token %s: %w", source, tokenDigest(token), err))
	}
	return claims, nil
}

// explainDenial logs, at debug level, what the resource policy saw: the
// status of every submodule and the request data. Never the secret.
func (s *Server) explainDenial(ctx context.Context, claims map[string]any, data policy.ResourceData) {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	statuses := map[string]any{}
	if subs, ok := claims["submods"].(map[string]any); ok {
		for name, v := range subs {
			if m, ok := v.(map[string]any); ok {
				tees := []string{}
				if ae, ok := m["ear.veraison.annotated-evidence"].(map[string]any); ok {
					for k := range ae {
						switch k {
						case "report_data", "runtime_data_claims", "init_data", "init_data_claims":
						default:
							tees = append(tees, k)
						}
					}
				}
				statuses[name] = map[string]any{"status": m["ear.status"], "trust_vector": m["ear.trustworthiness-vector"], "tees": tees}
			}
		}
	}
	// The query is not logged: it may carry tokens. Its keys are.
	keys := slices.Sorted(maps.Keys(data.Query))
	for i, k := range keys {
		keys[i] = logSafe(k)
	}
	s.log.Debug("resource policy denied the request", "request_id", requestID(ctx), "plugin", logSafe(data.Plugin),
		"resource_path", logSafe(strings.Join(data.ResourcePath, "/")), "query_keys", keys, "submods", statuses)
}

// initDataClaims extracts /submods/cpu0/ear.veraison.annotated-evidence/init_data_claims.
func initDataClaims(claims map[string]any) any {
	subs, _ := claims["submods"].(map[string]any)
	cpu0, _ := subs["cpu0"].(map[string]any)
	ae, _ := cpu0["ear.veraison.annotated-evidence"].(map[string]any)
	return ae["init_data_claims"]
}
