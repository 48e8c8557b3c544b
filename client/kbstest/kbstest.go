// Package kbstest is a minimal in-memory fake KBS for tests of KBS clients.
//
// It speaks the RCAR protocol (version 0.4.0) with session cookies, verifies
// "sample" evidence (and "sampledevice" additional evidence) against the
// runtime-data digest it recomputes independently, issues unsigned tokens,
// serves JWE-encrypted resources to attested sessions or Bearer tokens, and
// implements the admin endpoints (resources, policies, reference values)
// enough for client tests. Error bodies are Trustee's ErrorInformation.
//
// It is a test double: it verifies nothing cryptographically beyond the
// sample report data and must never be used as a real KBS.
package kbstest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/internal/jcs"
	"github.com/sigil-attestation/sigil/protocol"
)

// Config configures a fake KBS.
type Config struct {
	// AdminToken, when non-empty, is the only bearer token admin calls
	// accept; "" accepts every admin call (like InsecureAllowAll).
	AdminToken string
	// SelectHash, when non-empty, is sent as the challenge's
	// {"selected-hash-algorithm": …}; verification then uses it. "" sends
	// extra-params "" (the client defaults to sha384).
	SelectHash string
	// MissingResourceStatus is the status for a missing resource: 404
	// (default) or 401 as Trustee does.
	MissingResourceStatus int
	// TokenTTL is the lifetime of issued tokens (default 5 minutes).
	TokenTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Request is a request as the fake received it.
type Request struct {
	Method string
	Path   string // below /kbs/v0/, unescaped
	Query  string
	Header http.Header
	Body   []byte
	Cookie bool // whether a kbs-session-id cookie was sent
}

// Counts counts protocol calls.
type Counts struct {
	Auth, Attest, ResourceGets int
}

type session struct {
	nonce    string
	tee      string
	alg      string
	attested bool
	token    string
}

type issued struct {
	key protocol.TeePubKey
	exp time.Time
}

// KBS is the fake server; it is an http.Handler serving /kbs/v0/….
type KBS struct {
	cfg Config

	mu                  sync.Mutex
	sessions            map[string]*session
	tokens              map[string]issued
	resources           map[string][]byte
	denyAll             bool
	resourcePolicy      []byte
	attestationPolicies map[string][]byte
	referenceValues     map[string]json.RawMessage
	requests            []Request
	counts              Counts
	attestations        []protocol.Attestation
}

// New returns a fake KBS.
func New(cfg Config) *KBS {
	if cfg.MissingResourceStatus == 0 {
		cfg.MissingResourceStatus = http.StatusNotFound
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &KBS{
		cfg:                 cfg,
		sessions:            map[string]*session{},
		tokens:              map[string]issued{},
		resources:           map[string][]byte{},
		attestationPolicies: map[string][]byte{},
		referenceValues:     map[string]json.RawMessage{},
	}
}

// SetResource stores a resource at "repo/type/tag" (or any plugin path).
func (k *KBS) SetResource(path string, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.resources[path] = append([]byte(nil), data...)
}

// Resource returns a stored resource.
func (k *KBS) Resource(path string) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.resources[path]
	return d, ok
}

// SetDenyAll makes every resource request fail with PolicyDeny.
func (k *KBS) SetDenyAll(deny bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.denyAll = deny
}

// DropSessions forgets every session, so cookies stop authenticating.
func (k *KBS) DropSessions() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sessions = map[string]*session{}
}

// Counts returns the protocol call counters.
func (k *KBS) Counts() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.counts
}

// Requests returns every request received, in order.
func (k *KBS) Requests() []Request {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Request(nil), k.requests...)
}

// Attestations returns every /attest body that parsed.
func (k *KBS) Attestations() []protocol.Attestation {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]protocol.Attestation(nil), k.attestations...)
}

// ResourcePolicy returns the last resource policy set.
func (k *KBS) ResourcePolicy() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.resourcePolicy
}

// AttestationPolicy returns the attestation policy stored under id.
func (k *KBS) AttestationPolicy(id string) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.attestationPolicies[id]
	return p, ok
}

// ReferenceValue returns a stored reference value.
func (k *KBS) ReferenceValue(name string) (json.RawMessage, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.referenceValues[name]
	return v, ok
}

const (
	cookieName = "kbs-session-id"
	prefix     = "/kbs/v0/"
)

func writeError(w http.ResponseWriter, status int, variant, detail string) {
	body, _ := json.Marshal(protocol.ErrorInformation{Type: protocol.ErrorTypePrefix + variant, Detail: detail})
	w.WriteHeader(status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// ServeHTTP implements http.Handler.
func (k *KBS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		writeError(w, http.StatusUnauthorized, "SerdeError", "Serialize/Deserialize failed")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, prefix)
	_, cookieErr := r.Cookie(cookieName)
	k.mu.Lock()
	k.requests = append(k.requests, Request{Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, Cookie: cookieErr == nil})
	k.mu.Unlock()

	plugin, rest, _ := strings.Cut(path, "/")
	switch {
	case plugin == "auth" && r.Method == http.MethodPost:
		k.auth(w, body)
	case plugin == "attest" && r.Method == http.MethodPost:
		k.attest(w, r, body)
	case plugin == "attestation-policy" && r.Method == http.MethodPost:
		if k.admin(w, r, "attestation-policy") {
			k.setAttestationPolicy(w, body)
		}
	case plugin == "resource-policy" && r.Method == http.MethodPost:
		if k.admin(w, r, "resource-policy") {
			k.setResourcePolicy(w, body)
		}
	case plugin == "resource-policy" && r.Method == http.MethodGet:
		if k.admin(w, r, "resource-policy") {
			k.mu.Lock()
			ids := []string{}
			if k.resourcePolicy != nil {
				ids = append(ids, "resource-policy")
			}
			k.mu.Unlock()
			writeJSON(w, ids)
		}
	case plugin == "reference-value" && r.Method == http.MethodPost:
		if k.admin(w, r, "reference-value") {
			k.registerReferenceValue(w, body)
		}
	case plugin == "reference-value" && r.Method == http.MethodGet:
		if k.admin(w, r, "reference-value") {
			k.mu.Lock()
			v, ok := k.referenceValues[rest]
			k.mu.Unlock()
			if !ok {
				writeError(w, http.StatusUnauthorized, "RvpsError", "RVPS configuration failed: reference value "+rest+" not found")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(v)
		}
	case plugin == "resource":
		k.resource(w, r, rest, body)
	default:
		writeError(w, http.StatusNotFound, "PluginNotFound", "Plugin "+plugin+" not found")
	}
}

func (k *KBS) auth(w http.ResponseWriter, body []byte) {
	var req protocol.Request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusUnauthorized, "AttestationError", "Attestation error: RCAR handshake Auth failed: "+err.Error())
		return
	}
	if req.Version != protocol.Version {
		writeError(w, http.StatusUnauthorized, "AttestationError",
			"Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is "+req.Version)
		return
	}
	id := randomHex(16)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	s := &session{nonce: base64.StdEncoding.EncodeToString(nonce), tee: req.Tee, alg: "sha384"}
	var extra any = ""
	if k.cfg.SelectHash != "" {
		extra = map[string]string{"selected-hash-algorithm": k.cfg.SelectHash}
		s.alg = strings.ToLower(k.cfg.SelectHash)
	}
	k.mu.Lock()
	k.sessions[id] = s
	k.counts.Auth++
	k.mu.Unlock()
	k.setCookie(w, id)
	writeJSON(w, map[string]any{"nonce": s.nonce, "extra-params": extra})
}

func (k *KBS) setCookie(w http.ResponseWriter, id string) {
	exp := k.cfg.Now().Add(k.cfg.TokenTTL).UTC().Format(http.TimeFormat)
	w.Header().Add("Set-Cookie", cookieName+"="+id+"; Expires="+exp)
}

func (k *KBS) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return c.Value, k.sessions[c.Value]
}

func (k *KBS) attest(w http.ResponseWriter, r *http.Request, body []byte) {
	id, s := k.session(r)
	if s == nil {
		writeError(w, http.StatusUnauthorized, "AttestationError", "Attestation error: RCAR handshake Attest failed: no session")
		return
	}
	k.mu.Lock()
	k.counts.Attest++
	attested, token := s.attested, s.token
	k.mu.Unlock()
	if attested {
		k.setCookie(w, id)
		writeJSON(w, map[string]string{"token": token})
		return
	}
	var att protocol.Attestation
	if err := json.Unmarshal(body, &att); err != nil {
		writeError(w, http.StatusUnauthorized, "AttestationError", "Attestation error: RCAR handshake Attest failed: "+err.Error())
		return
	}
	k.mu.Lock()
	k.attestations = append(k.attestations, att)
	k.mu.Unlock()
	if err := verify(s, &att); err != nil {
		writeError(w, http.StatusUnauthorized, "AttestationError", "Attestation error: RCAR handshake Attest failed: "+err.Error())
		return
	}
	now := k.cfg.Now()
	claims := map[string]any{
		"iss": "kbstest", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(k.cfg.TokenTTL).Unix(),
		"tee-pubkey": att.RuntimeData.TeePubKey.Map(),
		"submods":    map[string]any{"cpu0": map[string]any{"ear.status": "affirming"}},
	}
	if att.InitData != nil {
		claims["init_data"] = att.InitData.Body
	}
	payload, _ := json.Marshal(claims)
	token = "eyJhbGciOiJub25lIn0." + b64.EncodeToString(payload) + "." + randomHex(8)
	k.mu.Lock()
	s.attested, s.token = true, token
	k.tokens[token] = issued{key: att.RuntimeData.TeePubKey, exp: now.Add(k.cfg.TokenTTL)}
	k.mu.Unlock()
	k.setCookie(w, id)
	writeJSON(w, map[string]string{"token": token})
}

// verify checks sample evidence against the session, recomputing the
// runtime-data digests from the received message.
func verify(s *session, att *protocol.Attestation) error {
	if att.RuntimeData.Nonce != s.nonce {
		return fmt.Errorf("nonce mismatch")
	}
	if s.tee != protocol.TeeSample {
		return fmt.Errorf("fake KBS verifies only sample evidence, not %q", s.tee)
	}
	if att.InitData != nil && att.InitData.Format != "toml" {
		//lint:ignore ST1005 Trustee's text.
		return fmt.Errorf("Unsupported initdata format")
	}
	key := att.RuntimeData.TeePubKey.Map()
	additional := att.TeeEvidence.AdditionalEvidence
	if additional != "" {
		var devs map[string]json.RawMessage
		if err := json.Unmarshal([]byte(additional), &devs); err != nil {
			return fmt.Errorf("additional evidence: %w", err)
		}
		want, err := digest(s.alg, map[string]any{"nonce": s.nonce, "tee-pubkey": key})
		if err != nil {
			return err
		}
		for tee, ev := range devs {
			if tee != protocol.TeeSampleDevice {
				return fmt.Errorf("unsupported device %q", tee)
			}
			if err := checkSample(ev, "2", want); err != nil {
				return fmt.Errorf("sampledevice: %w", err)
			}
		}
	}
	want, err := digest(s.alg, map[string]any{"nonce": s.nonce, "tee-pubkey": key, "additional-evidence": additional})
	if err != nil {
		return err
	}
	return checkSample(att.TeeEvidence.PrimaryEvidence, "1", want)
}

func checkSample(ev json.RawMessage, svn string, want []byte) error {
	var e struct {
		SVN        string `json:"svn"`
		ReportData string `json:"report_data"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		return fmt.Errorf("sample evidence: %w", err)
	}
	got, err := base64.StdEncoding.Strict().DecodeString(e.ReportData)
	if err != nil {
		return fmt.Errorf("sample evidence report_data: %w", err)
	}
	if e.SVN != svn {
		return fmt.Errorf("svn %q, want %q", e.SVN, svn)
	}
	if string(got) != string(want) {
		return fmt.Errorf("report data mismatch")
	}
	return nil
}

func digest(alg string, v any) ([]byte, error) {
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha384":
		h = sha512.New384()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("unsupported hash %q", alg)
	}
	data, err := jcs.Marshal(v)
	if err != nil {
		return nil, err
	}
	h.Write(data)
	return h.Sum(nil), nil
}

// tokenKey authorises a resource request: an attested session cookie first,
// then a Bearer token.
func (k *KBS) tokenKey(r *http.Request) (protocol.TeePubKey, bool) {
	now := k.cfg.Now()
	if _, s := k.session(r); s != nil && s.attested {
		k.mu.Lock()
		t, ok := k.tokens[s.token]
		k.mu.Unlock()
		if ok && now.Before(t.exp) {
			return t.key, true
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		k.mu.Lock()
		t, ok := k.tokens[tok]
		k.mu.Unlock()
		if ok && now.Before(t.exp) {
			return t.key, true
		}
	}
	return protocol.TeePubKey{}, false
}

func (k *KBS) resource(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	switch r.Method {
	case http.MethodPost:
		if k.admin(w, r, "") {
			k.SetResource(path, body)
		}
		return
	case http.MethodDelete:
		if !k.admin(w, r, "") {
			return
		}
		k.mu.Lock()
		_, ok := k.resources[path]
		delete(k.resources, path)
		k.mu.Unlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "PluginInternalError", "Plugin internal error")
		}
		return
	case http.MethodGet:
	default:
		writeError(w, http.StatusUnauthorized, "PluginInternalError", "Plugin internal error")
		return
	}
	k.mu.Lock()
	k.counts.ResourceGets++
	deny := k.denyAll
	k.mu.Unlock()
	key, ok := k.tokenKey(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "TokenNotFound", "Attestation Token not found")
		return
	}
	if deny {
		writeError(w, http.StatusUnauthorized, "PolicyDeny", "Access denied by policy")
		return
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	data, ok := k.Resource(path)
	if !ok {
		if k.cfg.MissingResourceStatus == http.StatusNotFound {
			writeError(w, http.StatusNotFound, "ResourceNotFound", "Resource "+path+" not found")
		} else {
			writeError(w, k.cfg.MissingResourceStatus, "PluginInternalError", "Plugin internal error")
		}
		return
	}
	resp, err := encrypt(rand.Reader, key, data)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "JweError", "JWE failed")
		return
	}
	writeJSON(w, resp)
}

// admin checks the admin bearer token; endpoint "" means a plugin path.
func (k *KBS) admin(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	if k.cfg.AdminToken == "" {
		return true
	}
	var reason string
	switch tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); {
	case !ok:
		reason = "Failed to parse HTTP Auth Bearer header"
	case tok != k.cfg.AdminToken:
		reason = "Admin access denied: Cannot verify token with any of the issuers"
	default:
		return true
	}
	if endpoint == "" {
		writeError(w, http.StatusUnauthorized, "AdminAuthInitialization", "failed to initialize [admin] configuration: "+reason)
	} else {
		writeError(w, http.StatusUnauthorized, "AdminAuthAccess", "admin access denied for endpoint "+endpoint+": "+reason)
	}
	return false
}

func (k *KBS) setAttestationPolicy(w http.ResponseWriter, body []byte) {
	var req struct {
		PolicyID string `json:"policy_id"`
		Policy   string `json:"policy"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.PolicyID == "" {
		writeError(w, http.StatusUnauthorized, "SerdeError", "Serialize/Deserialize failed")
		return
	}
	p, err := b64.Strict().DecodeString(req.Policy)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "AttestationError", "Attestation error: Set Attestation Policy failed")
		return
	}
	k.mu.Lock()
	k.attestationPolicies[req.PolicyID] = p
	k.mu.Unlock()
}

func (k *KBS) setResourcePolicy(w http.ResponseWriter, body []byte) {
	var req struct {
		Policy *string `json:"policy"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Policy == nil {
		writeError(w, http.StatusUnauthorized, "ParsePolicyError", "Failed to parse policy: missing field `policy`")
		return
	}
	p, err := b64.Strict().DecodeString(*req.Policy)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "ParsePolicyError", "Failed to parse policy: "+err.Error())
		return
	}
	k.mu.Lock()
	k.resourcePolicy = p
	k.mu.Unlock()
}

func (k *KBS) registerReferenceValue(w http.ResponseWriter, body []byte) {
	var msg struct {
		Version string `json:"version"`
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		writeError(w, http.StatusUnauthorized, "RvpsError", "RVPS configuration failed: "+err.Error())
		return
	}
	if msg.Version != "0.1.0" {
		writeError(w, http.StatusUnauthorized, "RvpsError", "RVPS configuration failed: Version unmatched! Need 0.1.0, given "+msg.Version+".")
		return
	}
	if msg.Type != "sample" {
		writeError(w, http.StatusUnauthorized, "RvpsError", "RVPS configuration failed: Could not find extractor for "+msg.Type)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(msg.Payload)
	var values map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(raw, &values)
	}
	if err != nil {
		writeError(w, http.StatusUnauthorized, "RvpsError", "RVPS configuration failed: bad sample payload")
		return
	}
	k.mu.Lock()
	for name, v := range values {
		k.referenceValues[name] = v
	}
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
