package kbs

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/sigil-attestation/sigil/attestation"
	"github.com/sigil-attestation/sigil/protocol"
)

// emptyExtraParams is the challenge extra-params for every TEE but SE: the
// JSON string "".
var emptyExtraParams = json.RawMessage(`""`)

func (s *Server) setCookie(w http.ResponseWriter, sess *session) {
	// Only Expires, as Trustee: no Path (the client's default path is
	// /kbs/v0, which also works behind a path prefix), no Secure (plain
	// HTTP deployments must keep working), no HttpOnly/SameSite.
	w.Header().Add("Set-Cookie", SessionCookie+"="+sess.ID+"; Expires="+sess.Timeout.UTC().Format(http.TimeFormat))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// handleAuth is RCAR step 1: check the version, create a session with a
// fresh 32-byte nonce.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) *Error {
	s.metrics.authRequests.Inc()
	body, e := s.readBody(w, r)
	if e != nil {
		s.metrics.authErrors.Inc()
		return e
	}
	var req protocol.Request
	if err := json.Unmarshal(body, &req); err != nil {
		s.metrics.authErrors.Inc()
		return errAttestAuth(fmt.Errorf("invalid request: %w", err))
	}
	if req.Version != protocol.Version {
		s.metrics.authErrors.Inc()
		return errAttestAuth(fmt.Errorf("KBS Client Protocol Version Mismatch: expect =%s while the request is %s", protocol.Version, req.Version))
	}
	if protocol.IsDeviceTee(req.Tee) {
		s.metrics.authErrors.Inc()
		return errAttestAuth(errDeviceTee(req.Tee))
	}
	var nonce [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, nonce[:]); err != nil {
		s.metrics.authErrors.Inc()
		return errAttestAuth(fmt.Errorf("generating nonce: %w", err))
	}
	ch := protocol.Challenge{Nonce: base64.StdEncoding.EncodeToString(nonce[:]), ExtraParams: emptyExtraParams}
	sess, err := s.sessions.create(r.Context(), req, ch)
	if errors.Is(err, errTooManySessions) {
		s.metrics.authErrors.Inc()
		return newError(VariantTooManySessions, fmt.Sprintf(
			"Too many RCAR sessions in progress (%d, [sigil] max_sessions); retry later", s.sessions.maxLive), err)
	}
	if err != nil {
		s.metrics.authErrors.Inc()
		//lint:ignore ST1005 Trustee's detail text.
		return errAttestAuth(fmt.Errorf("Session storage error: %w", err))
	}
	s.metrics.authSuccesses.Inc()
	s.log.Debug("session created", "request_id", requestID(r.Context()), "session", sess.ID, "tee", req.Tee)
	s.setCookie(w, sess)
	writeJSON(w, ch)
	return nil
}

// handleAttest is RCAR step 3. Every failure is reported with the same
// detail, as Trustee does; the cause is logged.
func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request) *Error {
	ctx := r.Context()
	s.metrics.attestRequests.Inc()
	cookie, err := r.Cookie(SessionCookie)
	if err != nil {
		s.metrics.attestErrors.Inc()
		return errAttest(errors.New("no kbs-session-id cookie"))
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.metrics.attestErrors.Inc()
		return e
	}
	var att protocol.Attestation
	if err := json.Unmarshal(body, &att); err != nil {
		s.metrics.attestErrors.Inc()
		return errAttest(fmt.Errorf("invalid attestation: %w", err))
	}
	done, err := s.sessions.begin(cookie.Value)
	if err != nil {
		s.metrics.attestErrors.Inc()
		return errAttest(err)
	}
	defer done()
	sess, err := s.sessions.get(ctx, cookie.Value, true)
	if err != nil {
		s.metrics.attestErrors.Inc()
		return errAttest(err)
	}
	if sess.attested() {
		s.setCookie(w, sess)
		writeJSON(w, protocol.AttestResponse{Token: sess.Token})
		return nil
	}
	if protocol.IsDeviceTee(sess.Request.Tee) {
		// Refused at /auth; a session written by another replica is
		// checked again.
		s.metrics.attestErrors.Inc()
		return errAttest(errDeviceTee(sess.Request.Tee))
	}
	if att.RuntimeData.Nonce != sess.Challenge.Nonce {
		s.metrics.attestErrors.Inc()
		return errAttest(errors.New("nonce mismatch: runtime-data nonce is not the challenge of this session"))
	}
	tee := sess.Request.Tee
	areq := &attestation.Request{
		Tee:                tee,
		Evidence:           att.TeeEvidence.PrimaryEvidence,
		AdditionalEvidence: att.TeeEvidence.AdditionalEvidence,
		RuntimeData: attestation.RuntimeData{
			Primary: map[string]any{
				"additional-evidence": att.TeeEvidence.AdditionalEvidence,
				"nonce":               sess.Challenge.Nonce,
				"tee-pubkey":          att.RuntimeData.TeePubKey.Map(),
			},
			Device: map[string]any{
				"nonce":      sess.Challenge.Nonce,
				"tee-pubkey": att.RuntimeData.TeePubKey.Map(),
			},
		},
		PolicyIDs:     []string{attestation.DefaultPolicyID},
		HashAlgorithm: "sha384",
		Explain:       s.log.Enabled(ctx, slog.LevelDebug),
	}
	if tee == protocol.TeeSe {
		areq.HashAlgorithm = "sha512"
	}
	if att.InitData != nil {
		if att.InitData.Format != "toml" {
			s.metrics.attestFailures.WithLabelValues(tee).Inc()
			//lint:ignore ST1005 Trustee's text.
			return errAttest(fmt.Errorf("Unsupported initdata format: %q", att.InitData.Format))
		}
		areq.InitDataTOML = []byte(att.InitData.Body)
	}
	res, err := s.cfg.AS.Evaluate(ctx, areq)
	if err != nil {
		s.metrics.attestFailures.WithLabelValues(tee).Inc()
		return errAttest(err)
	}
	s.metrics.attestSuccesses.WithLabelValues(tee).Inc()
	if s.log.Enabled(ctx, slog.LevelDebug) {
		for _, a := range res.Appraisals {
			s.log.Debug("appraisal", "request_id", requestID(ctx), "session", sess.ID, "submod", a.Name,
				"tee", a.Tee, "policy", a.PolicyID, "status", a.Status, "trust_vector", jsonText(a.TrustVector),
				"explanation", jsonText(a.Explanation))
		}
	}
	attested := &session{ID: sess.ID, Timeout: sess.Timeout, Token: res.Token}
	if err := s.sessions.put(ctx, attested); err != nil {
		//lint:ignore ST1005 Trustee's detail text.
		return errAttest(fmt.Errorf("Session storage error: %w", err))
	}
	s.sessions.remember(attested)
	s.setCookie(w, attested)
	writeJSON(w, protocol.AttestResponse{Token: res.Token})
	return nil
}

// errDeviceTee explains why a device TEE cannot be the primary evidence.
func errDeviceTee(tee string) error {
	return fmt.Errorf("tee %q is a device TEE and cannot be the primary evidence: attest with the CPU TEE "+
		"(tdx, snp, az-snp-vtpm, …) and send device evidence in tee-evidence.additional_evidence", tee)
}

// tokenDigest identifies a token in logs without revealing it.
func tokenDigest(tok string) string {
	d := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(d[:6])
}

// jsonText renders v as compact JSON for log attributes.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
