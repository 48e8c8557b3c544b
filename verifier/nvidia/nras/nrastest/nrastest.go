// Package nrastest is a fake NVIDIA Remote Attestation Service for tests: an
// httptest server that answers POST /v4/attest/{gpu,switch} (and /v3/…) with a
// detached EAT signed by a P-384 key it generates, served at
// GET /.well-known/jwks.json, following the contract of NRAS v4.
//
// The per-device claims come from Options.Claims; by default (SuccessClaims)
// they say every check succeeded. VerifierClaims makes the fake really verify
// the evidence with the local verifier (package nvidia) and map its result to
// NRAS claims, so remote and local modes stay consistent.
//
// It is for tests only; product code must not import it.
package nrastest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
	"github.com/sigil-attestation/sigil/verifier/nvidia"
)

// Device is one evidence_list item of a request, decoded.
type Device struct {
	// Kind is "gpu" or "switch" (from the path).
	Kind string
	// Index is the position in evidence_list (the N of GPU-N).
	Index int
	// Arch is the request's arch ("HOPPER", "BLACKWELL", "LS10").
	Arch string
	// NonceHex is the request nonce as sent.
	NonceHex string
	// Report is the decoded evidence (SPDM request ‖ response).
	Report []byte
	// CertificatePEM is the decoded certificate chain.
	CertificatePEM []byte
	// Evidence and Certificate are the item's strings as sent.
	Evidence, Certificate string
}

// ClaimsFunc returns the claims of one device token. The fake adds iss, iat,
// nbf, exp, jti and eat_nonce. An error makes the fake answer 400 with the
// error as message.
type ClaimsFunc func(ctx context.Context, d Device) (map[string]any, error)

// Request is a recorded attestation request.
type Request struct {
	Path          string
	Authorization string
	ContentType   string
	// Body is the raw request body.
	Body []byte
	// Nonce, Arch, ClaimsVersion and Items are the decoded fields.
	Nonce, Arch, ClaimsVersion string
	Items                      []Item
}

// Item is one evidence_list entry as sent.
type Item struct {
	Evidence    string `json:"evidence"`
	Certificate string `json:"certificate"`
}

// Options configure the fake.
type Options struct {
	// Claims produces each device's claims; nil means SuccessClaims.
	Claims ClaimsFunc
	// ServiceKey, when set, is required as "Authorization: Bearer <key>"
	// (403 otherwise).
	ServiceKey string
	// Issuer is the iss of every token; empty means the server's URL.
	Issuer string
	// Now is the clock for iat/nbf/exp; nil means time.Now.
	Now func() time.Time
	// TTL is exp − iat; 0 means one hour, as NRAS.
	TTL time.Duration
	// OmitXY / OmitX5C leave x,y or x5c out of the JWKS entries.
	OmitXY, OmitX5C bool
	// Override, when set, is consulted first for attestation requests: if
	// it returns ok, the fake answers status with body as is.
	Override func(r *Request) (status int, body []byte, ok bool)
}

type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
	cert []byte // self-signed DER, for x5c
}

// Server is a running fake NRAS. Close it when done.
type Server struct {
	*httptest.Server
	opts Options

	mu          sync.Mutex
	keys        []*signingKey // keys[0] signs; all are served
	jwksFetches int
	requests    []Request
}

// New starts a fake NRAS with a fresh P-384 signing key.
func New(opts Options) (*Server, error) {
	if opts.Claims == nil {
		opts.Claims = SuccessClaims
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TTL == 0 {
		opts.TTL = time.Hour
	}
	s := &Server{opts: opts}
	k, err := newSigningKey(opts.Now())
	if err != nil {
		return nil, err
	}
	s.keys = []*signingKey{k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", s.serveJWKS)
	mux.HandleFunc("POST /v4/attest/{kind}", s.serveAttest)
	mux.HandleFunc("POST /v3/attest/{kind}", s.serveAttest)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.Server = httptest.NewServer(mux)
	return s, nil
}

// Issuer is the iss the fake puts in its tokens.
func (s *Server) Issuer() string {
	if s.opts.Issuer != "" {
		return s.opts.Issuer
	}
	return s.URL
}

// Kid is the kid of the current signing key.
func (s *Server) Kid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0].kid
}

// PublicKey is the current signing key's public key.
func (s *Server) PublicKey() *ecdsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.keys[0].priv.PublicKey
}

// RotateKey makes a new signing key current. With keepOld the previous keys
// stay in the JWKS; otherwise only the new key is served.
func (s *Server) RotateKey(keepOld bool) error {
	k, err := newSigningKey(s.opts.Now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keepOld {
		s.keys = append([]*signingKey{k}, s.keys...)
	} else {
		s.keys = []*signingKey{k}
	}
	return nil
}

// JWKSFetches is the number of JWKS requests served.
func (s *Server) JWKSFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksFetches
}

// Requests returns the attestation requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.jwksFetches++
	keys := append([]*signingKey(nil), s.keys...)
	s.mu.Unlock()
	type jwk struct {
		Kty string   `json:"kty"`
		Crv string   `json:"crv"`
		Kid string   `json:"kid"`
		X   string   `json:"x,omitempty"`
		Y   string   `json:"y,omitempty"`
		X5C []string `json:"x5c,omitempty"`
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	for _, k := range keys {
		j := jwk{Kty: "EC", Crv: "P-384", Kid: k.kid}
		if !s.opts.OmitXY {
			pt, err := k.priv.PublicKey.Bytes()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			j.X = base64.RawURLEncoding.EncodeToString(pt[1:49])
			j.Y = base64.RawURLEncoding.EncodeToString(pt[49:])
		}
		if !s.opts.OmitX5C {
			j.X5C = []string{base64.StdEncoding.EncodeToString(k.cert)}
		}
		doc.Keys = append(doc.Keys, j)
	}
	writeJSON(w, http.StatusOK, doc)
}

type errorBody struct {
	Message string `json:"message"`
}

func (s *Server) serveAttest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"cannot read body"})
		return
	}
	rec := Request{
		Path:          r.URL.Path,
		Authorization: r.Header.Get("Authorization"),
		ContentType:   r.Header.Get("Content-Type"),
		Body:          body,
	}
	var in struct {
		Nonce         string `json:"nonce"`
		Arch          string `json:"arch"`
		EvidenceList  []Item `json:"evidence_list"`
		ClaimsVersion string `json:"claims_version"`
	}
	decodeErr := json.Unmarshal(body, &in)
	rec.Nonce, rec.Arch, rec.ClaimsVersion, rec.Items = in.Nonce, in.Arch, in.ClaimsVersion, in.EvidenceList
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if s.opts.Override != nil {
		if status, resp, ok := s.opts.Override(&rec); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(resp)
			return
		}
	}
	if s.opts.ServiceKey != "" && rec.Authorization != "Bearer "+s.opts.ServiceKey {
		writeJSON(w, http.StatusForbidden, errorBody{"missing or invalid service key"})
		return
	}
	if !strings.HasPrefix(rec.ContentType, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{"Content-Type must be application/json"})
		return
	}
	kind := r.PathValue("kind")
	devices, claimsVersion, msg := validate(kind, decodeErr, in.Nonce, in.Arch, in.ClaimsVersion, in.EvidenceList)
	if msg != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{msg})
		return
	}
	claims := make([]map[string]any, len(devices))
	for i, d := range devices {
		c, err := s.opts.Claims(r.Context(), d)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		claims[i] = c
	}
	resp, err := s.DetachedEAT(kind, in.Nonce, claimsVersion, claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// validate checks a request as NRAS does and decodes its devices; msg is
// non-empty for a 400.
func validate(kind string, decodeErr error, nonce, arch, cv string, items []Item) ([]Device, string, string) {
	if kind != "gpu" && kind != "switch" {
		return nil, "", "unknown attestation kind " + strconv.Quote(kind)
	}
	if decodeErr != nil {
		return nil, "", "invalid JSON: " + decodeErr.Error()
	}
	if n, err := hex.DecodeString(nonce); err != nil || len(n) != 32 {
		return nil, "", "invalid nonce: want 64 hex characters"
	}
	switch {
	case kind == "gpu" && (arch == "HOPPER" || arch == "BLACKWELL"):
	case kind == "switch" && arch == "LS10":
	default:
		return nil, "", fmt.Sprintf("invalid arch %q for %s", arch, kind)
	}
	switch cv {
	case "":
		cv = "2.0"
	case "2.0", "3.0", "4.0":
	default:
		return nil, "", "unsupported claims_version " + strconv.Quote(cv)
	}
	if len(items) == 0 {
		return nil, "", "evidence_list is empty"
	}
	devs := make([]Device, len(items))
	for i, it := range items {
		rep, err := base64.StdEncoding.DecodeString(it.Evidence)
		if err != nil || len(rep) == 0 {
			return nil, "", fmt.Sprintf("evidence %d is not base64", i)
		}
		pemb, err := base64.StdEncoding.DecodeString(it.Certificate)
		if err != nil || len(pemb) == 0 {
			return nil, "", fmt.Sprintf("certificate %d is not base64", i)
		}
		devs[i] = Device{Kind: kind, Index: i, Arch: arch, NonceHex: nonce, Report: rep,
			CertificatePEM: pemb, Evidence: it.Evidence, Certificate: it.Certificate}
	}
	return devs, cv, ""
}

// DetachedEAT builds a detached EAT as NRAS answers it: a device token per
// claims entry (named GPU-i or SWITCH-i, with iss/iat/nbf/exp/jti/eat_nonce
// added) and the overall token with submods digests, all signed with the
// current key. x-nvidia-overall-att-result is OverallResult(claims).
func (s *Server) DetachedEAT(kind, nonceHex, claimsVersion string, claims []map[string]any) ([]byte, error) {
	prefix := "GPU-"
	if kind == "switch" {
		prefix = "SWITCH-"
	}
	now := s.opts.Now().Unix()
	exp := now + int64(s.opts.TTL/time.Second)
	devices := make(map[string]string, len(claims))
	submods := make(map[string]any, len(claims))
	for i, c := range claims {
		dc := make(map[string]any, len(c)+6)
		for k, v := range c {
			dc[k] = v
		}
		jti, err := newJTI()
		if err != nil {
			return nil, err
		}
		dc["iss"], dc["iat"], dc["nbf"], dc["exp"], dc["jti"], dc["eat_nonce"] = s.Issuer(), now, now, exp, jti, nonceHex
		tok, err := s.SignJWT(dc)
		if err != nil {
			return nil, err
		}
		name := prefix + strconv.Itoa(i)
		devices[name] = tok
		d := sha256.Sum256([]byte(tok))
		submods[name] = []any{"DIGEST", []any{"SHA-256", hex.EncodeToString(d[:])}}
	}
	jti, err := newJTI()
	if err != nil {
		return nil, err
	}
	overall := map[string]any{
		"sub":                         "NVIDIA-PLATFORM-ATTESTATION",
		"x-nvidia-ver":                claimsVersion,
		"iss":                         s.Issuer(),
		"x-nvidia-overall-att-result": OverallResult(claims),
		"submods":                     submods,
		"eat_nonce":                   nonceHex,
		"iat":                         now,
		"nbf":                         now,
		"exp":                         exp,
		"jti":                         jti,
	}
	tok, err := s.SignJWT(overall)
	if err != nil {
		return nil, err
	}
	return json.Marshal([]any{[]any{"JWT", tok}, devices})
}

// SignJWT signs claims as a compact ES384 JWS with header {kid, alg} using
// the current key.
func (s *Server) SignJWT(claims map[string]any) (string, error) {
	s.mu.Lock()
	k := s.keys[0]
	s.mu.Unlock()
	return SignJWT(k.priv, k.kid, claims)
}

// SignJWT signs claims as a compact ES384 JWS with header {kid, alg}.
func SignJWT(key *ecdsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"kid": kid, "alg": "ES384"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	d := sha512.Sum384([]byte(in))
	r, sv, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	sv.FillBytes(sig[48:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// OverallResult is true when every device's measres is "success" and none
// of its boolean claims is false.
func OverallResult(claims []map[string]any) bool {
	if len(claims) == 0 {
		return false
	}
	for _, c := range claims {
		if c["measres"] != "success" {
			return false
		}
		for _, v := range c {
			if b, ok := v.(bool); ok && !b {
				return false
			}
		}
	}
	return true
}

// SuccessClaims returns NRAS v3 claims saying every check of the device
// succeeded. Versions, ueid and hwmodel come from the report and chain when
// they parse.
func SuccessClaims(_ context.Context, d Device) (map[string]any, error) {
	p := "x-nvidia-gpu-"
	if d.Kind == "switch" {
		p = "x-nvidia-switch-"
	}
	chain := map[string]any{
		"x-nvidia-cert-status":            "valid",
		"x-nvidia-cert-ocsp-status":       "good",
		"x-nvidia-cert-expiration-date":   "9999-12-31T23:59:59Z",
		"x-nvidia-cert-revocation-reason": nil,
	}
	c := map[string]any{
		p + "arch-check":                               true,
		p + "attestation-report-parsed":                true,
		p + "attestation-report-nonce-match":           true,
		p + "attestation-report-signature-verified":    true,
		p + "attestation-report-cert-chain":            chain,
		p + "attestation-report-cert-chain-fwid-match": true,
		"measres":                      "success",
		"secboot":                      true,
		"dbgstat":                      "disabled",
		"hwmodel":                      nil,
		"ueid":                         nil,
		"oemid":                        "5703",
		"x-nvidia-attestation-warning": nil,
	}
	rims := []string{"driver-rim", "vbios-rim"}
	if d.Kind == "switch" {
		rims = []string{"bios-rim"}
		c["oemid"] = nil
	} else {
		c[p+"vbios-index-no-conflict"] = true
	}
	for _, r := range rims {
		for _, s := range []string{"-fetched", "-schema-validated", "-signature-verified", "-version-match", "-measurements-available"} {
			c[p+r+s] = true
		}
		c[p+r+"-cert-chain"] = chain
	}
	if rep, err := nvidia.ParseReport(d.Report); err == nil {
		if v, ok := rep.Field(nvidia.OpaqueDriverVersion); ok && d.Kind == "gpu" {
			c[p+"driver-version"] = strings.TrimRight(string(v), "\x00")
		}
		if v, ok := rep.Field(nvidia.OpaqueVBIOSVersion); ok {
			key := p + "vbios-version"
			if d.Kind == "switch" {
				key = p + "bios-version"
			}
			c[key] = vbiosString(v, d.Kind == "switch")
		}
	}
	if certs, err := nvidia.ParseCertChain(d.CertificatePEM); err == nil && len(certs) > 1 {
		c["ueid"] = certs[0].SerialNumber.String()
		c["hwmodel"] = certs[1].Subject.CommonName
	}
	return c, nil
}

// vbiosString formats opaque type 6 as NRAS does: ASCII for switches, the
// byte-reversed "96.00.9F.00.01" form for GPUs.
func vbiosString(v []byte, ascii bool) string {
	if ascii {
		return strings.ToUpper(strings.TrimRight(string(v), "\x00"))
	}
	if len(v) < 8 {
		return strings.ToUpper(hex.EncodeToString(v))
	}
	h := strings.ToUpper(fmt.Sprintf("%02x%02x%02x%02x%02x", v[3], v[2], v[1], v[0], v[4]))
	return fmt.Sprintf("%s.%s.%s.%s.%s", h[0:2], h[2:4], h[4:6], h[6:8], h[8:10])
}

// VerifierClaims returns a ClaimsFunc that verifies each device with the
// local verifier (report data = the request nonce) and keeps the NRAS claim
// names of its result: a fake that really verifies (nvidia.md §5.2). Trustee
// local-mode claims (arch, uuid, measurements, config) and Sigil
// diagnostics (x-sigil-*) are dropped.
func VerifierClaims(v *nvidia.Verifier) ClaimsFunc {
	return func(ctx context.Context, d Device) (map[string]any, error) {
		nonce, err := hex.DecodeString(d.NonceHex)
		if err != nil {
			return nil, err
		}
		res, err := v.VerifyDevice(ctx, nvidia.DeviceEvidence{
			Arch: d.Arch, Evidence: d.Evidence, Certificate: d.Certificate,
		}, verifier.Expected{ReportData: nonce})
		if res.Claims == nil {
			if err == nil {
				err = errors.New("local verifier returned no claims")
			}
			return nil, err
		}
		out := make(map[string]any, len(res.Claims))
		for k, val := range res.Claims {
			switch {
			case k == "arch", k == "uuid", k == "measurements", k == "config":
			case strings.HasPrefix(k, "x-sigil-"):
			default:
				if m, ok := val.(map[string]any); ok {
					val = withoutSigil(m)
				}
				out[k] = val
			}
		}
		return out, nil
	}
}

func withoutSigil(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "x-sigil-") {
			out[k] = v
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newJTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func newSigningKey(now time.Time) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Test NVIDIA Attestation Service GPU"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	kid := fmt.Sprintf("nv-eat-kid-test-%s-%x", now.UTC().Format("20060102150405000"), serial.Bytes()[:8])
	return &signingKey{kid: kid, priv: priv, cert: der}, nil
}
