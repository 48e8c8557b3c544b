package nras

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/verifier"
)

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = time.Minute

// ClaimOverallResult is the overall token's verdict, copied into each
// device's claims by Result.DeviceClaims as Trustee does.
const ClaimOverallResult = "x-nvidia-overall-att-result"

// Result is a verified detached EAT.
type Result struct {
	// Overall holds the overall token's claims (sub, iss, eat_nonce,
	// submods, x-nvidia-overall-att-result, …). Numbers are json.Number.
	Overall map[string]any
	// Devices holds each device token's claims keyed as NRAS names the
	// device ("GPU-0", "SWITCH-1", …). Numbers are json.Number.
	Devices map[string]map[string]any
	// Names lists the keys of Devices by kind and numeric index
	// (GPU-0, GPU-1, …, GPU-10).
	Names []string
	// OverallResult is x-nvidia-overall-att-result (false when absent or
	// not a boolean).
	OverallResult bool
	// Expires is the earliest exp of all tokens.
	Expires time.Time
}

// DeviceClaims returns a copy of the named device's claims with
// x-nvidia-overall-att-result added from the overall token: the claim set
// Trustee's Remote mode hands to the policy. Nil if the device is unknown.
func (r *Result) DeviceClaims(name string) map[string]any {
	d, ok := r.Devices[name]
	if !ok {
		return nil
	}
	c := make(map[string]any, len(d)+1)
	for k, v := range d {
		c[k] = v
	}
	c[ClaimOverallResult] = r.OverallResult
	return c
}

// Results returns one verifier.Result per device in Names order: the
// DeviceClaims, class "switch" for SWITCH-n devices and "gpu" otherwise
// (Trustee's Remote-mode output).
func (r *Result) Results() []verifier.Result {
	out := make([]verifier.Result, 0, len(r.Names))
	for _, n := range r.Names {
		class := "gpu"
		if strings.HasPrefix(n, "SWITCH-") {
			class = "switch"
		}
		out = append(out, verifier.Result{Class: class, Claims: r.DeviceClaims(n)})
	}
	return out
}

// CheckNonceMatch returns an error wrapping ErrDeviceNonceMismatch when a
// device's x-nvidia-gpu-attestation-report-nonce-match (or the switch
// equivalent, chosen by the device name) is not true: Trustee's one hard
// requirement on NRAS device claims.
func (r *Result) CheckNonceMatch() error {
	for _, n := range r.Names {
		prefix := "x-nvidia-gpu-"
		if strings.HasPrefix(n, "SWITCH-") {
			prefix = "x-nvidia-switch-"
		}
		if v, _ := r.Devices[n][prefix+"attestation-report-nonce-match"].(bool); !v {
			return fmt.Errorf("%w: %s", ErrDeviceNonceMismatch, n)
		}
	}
	return nil
}

// KeySet resolves a JWT kid to its P-384 verification key.
type KeySet interface {
	// Key returns the key for kid, or an error wrapping ErrUnknownKey.
	Key(kid string) (*ecdsa.PublicKey, error)
}

// StaticKeys is a fixed KeySet.
type StaticKeys map[string]*ecdsa.PublicKey

// Key implements KeySet.
func (s StaticKeys) Key(kid string) (*ecdsa.PublicKey, error) {
	if k, ok := s[kid]; ok && k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// jwt is one parsed compact JWS.
type jwt struct {
	raw          string // the compact serialisation
	signingInput string // header.payload
	kid          string
	sig          []byte
	claims       map[string]any
}

// detachedEAT is the parsed, not yet verified, response.
type detachedEAT struct {
	overall *jwt
	devices map[string]*jwt
}

func (d *detachedEAT) kids() []string {
	seen := map[string]bool{d.overall.kid: true}
	out := []string{d.overall.kid}
	for _, t := range d.devices {
		if !seen[t.kid] {
			seen[t.kid] = true
			out = append(out, t.kid)
		}
	}
	return out
}

// parseDetachedEAT checks the response shape [["JWT", overall], {name: jwt}]
// and parses every JWT (syntax, header, claims), without verifying anything.
func parseDetachedEAT(raw []byte) (*detachedEAT, error) {
	var top []json.RawMessage
	if err := strictUnmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(top) != 2 {
		return nil, fmt.Errorf("%w: top-level array has %d elements, want 2", ErrMalformed, len(top))
	}
	var head []string
	if err := strictUnmarshal(top[0], &head); err != nil {
		return nil, fmt.Errorf("%w: first element: %v", ErrMalformed, err)
	}
	if len(head) != 2 || head[0] != "JWT" {
		return nil, fmt.Errorf("%w: first element is not [\"JWT\", token]", ErrMalformed)
	}
	var devs map[string]string
	if err := strictUnmarshal(top[1], &devs); err != nil {
		return nil, fmt.Errorf("%w: device map: %v", ErrMalformed, err)
	}
	if devs == nil {
		return nil, fmt.Errorf("%w: device map is null", ErrMalformed)
	}
	out := &detachedEAT{devices: make(map[string]*jwt, len(devs))}
	var err error
	if out.overall, err = parseJWT(head[1]); err != nil {
		return nil, fmt.Errorf("overall token: %w", err)
	}
	for name, tok := range devs {
		if name == "" {
			return nil, fmt.Errorf("%w: empty device name", ErrMalformed)
		}
		if out.devices[name], err = parseJWT(tok); err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
	}
	return out, nil
}

// strictUnmarshal decodes exactly one JSON value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

func parseJWT(s string) (*jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: JWT has %d segments, want 3", ErrMalformed, len(parts))
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: JWT header: %v", ErrMalformed, err)
	}
	var h jwtHeader
	if err := strictUnmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: JWT header: %v", ErrMalformed, err)
	}
	if h.Alg != "ES384" {
		return nil, fmt.Errorf("%w: alg %q", ErrAlgorithm, h.Alg)
	}
	if len(h.Crit) != 0 {
		return nil, fmt.Errorf("%w: critical header extensions", ErrAlgorithm)
	}
	if h.Kid == "" {
		return nil, fmt.Errorf("%w: JWT header has no kid", ErrMalformed)
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: JWT payload: %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, fmt.Errorf("%w: JWT payload is not a JSON object", ErrMalformed)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: JWT payload: trailing data", ErrMalformed)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: JWT signature: %v", ErrMalformed, err)
	}
	if len(sig) != 96 {
		return nil, fmt.Errorf("%w: ES384 signature is %d bytes, want 96", ErrSignature, len(sig))
	}
	return &jwt{
		raw:          s,
		signingInput: s[:len(parts[0])+1+len(parts[1])],
		kid:          h.Kid,
		sig:          sig,
		claims:       claims,
	}, nil
}

func (t *jwt) verifySignature(keys KeySet) error {
	pub, err := keys.Key(t.kid)
	if err != nil {
		return err
	}
	if pub.Curve != elliptic.P384() {
		return fmt.Errorf("%w: key %q is not P-384", ErrSignature, t.kid)
	}
	d := sha512.Sum384([]byte(t.signingInput))
	r := new(big.Int).SetBytes(t.sig[:48])
	s := new(big.Int).SetBytes(t.sig[48:])
	if !ecdsa.Verify(pub, d[:], r, s) {
		return fmt.Errorf("%w: kid %q", ErrSignature, t.kid)
	}
	return nil
}

// checks configures the claim checks of verify.
type checks struct {
	nonceHex string
	issuer   string
	now      time.Time
	leeway   time.Duration
}

// VerifyDetachedEAT verifies an NRAS v4 detached EAT (the body of a 200
// answer) against keys: every ES384 signature, exp/nbf/iat at now (with
// DefaultLeeway), iss == issuer, eat_nonce == hex(nonce) and the submods
// digests of the device tokens. nonce must not be empty.
func VerifyDetachedEAT(raw []byte, keys KeySet, nonce []byte, issuer string, now time.Time) (*Result, error) {
	d, err := parseDetachedEAT(raw)
	if err != nil {
		return nil, err
	}
	return d.verify(keys, checks{nonceHex: hex.EncodeToString(nonce), issuer: issuer, now: now, leeway: DefaultLeeway})
}

func (d *detachedEAT) verify(keys KeySet, c checks) (*Result, error) {
	if c.nonceHex == "" {
		return nil, fmt.Errorf("%w: no nonce to check eat_nonce against", ErrRequest)
	}
	if c.issuer == "" {
		return nil, fmt.Errorf("%w: no expected issuer", ErrRequest)
	}
	if err := d.overall.verifySignature(keys); err != nil {
		return nil, fmt.Errorf("overall token: %w", err)
	}
	for name, t := range d.devices {
		if err := t.verifySignature(keys); err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
	}
	return d.checkClaims(c)
}

// checkClaims runs every check but the signatures.
func (d *detachedEAT) checkClaims(c checks) (*Result, error) {
	res := &Result{
		Overall: d.overall.claims,
		Devices: make(map[string]map[string]any, len(d.devices)),
	}
	exp, err := checkTime(d.overall.claims, c.now, c.leeway)
	if err != nil {
		return nil, fmt.Errorf("overall token: %w", err)
	}
	res.Expires = exp
	if err := checkString(d.overall.claims, "iss", c.issuer, true, false, ErrIssuer); err != nil {
		return nil, fmt.Errorf("overall token: %w", err)
	}
	if err := checkString(d.overall.claims, "eat_nonce", c.nonceHex, true, true, ErrNonce); err != nil {
		return nil, fmt.Errorf("overall token: %w", err)
	}
	if v, ok := d.overall.claims[ClaimOverallResult]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, fmt.Errorf("%w: %s is not a boolean", ErrMalformed, ClaimOverallResult)
		}
		res.OverallResult = b
	}
	if err := d.checkSubmods(); err != nil {
		return nil, err
	}
	for name, t := range d.devices {
		exp, err := checkTime(t.claims, c.now, c.leeway)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
		if exp.Before(res.Expires) {
			res.Expires = exp
		}
		if err := checkString(t.claims, "iss", c.issuer, false, false, ErrIssuer); err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
		if err := checkString(t.claims, "eat_nonce", c.nonceHex, false, true, ErrNonce); err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
		res.Devices[name] = t.claims
		res.Names = append(res.Names, name)
	}
	sortNames(res.Names)
	return res, nil
}

// checkSubmods requires the overall submods to name exactly the device
// tokens, each with the digest of the device's compact JWT.
func (d *detachedEAT) checkSubmods() error {
	if len(d.devices) == 0 {
		return fmt.Errorf("%w: no device tokens", ErrSubmods)
	}
	raw, ok := d.overall.claims["submods"]
	if !ok {
		return fmt.Errorf("%w: overall token has no submods", ErrSubmods)
	}
	sub, ok := raw.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: submods is not an object", ErrMalformed)
	}
	for name := range sub {
		if _, ok := d.devices[name]; !ok {
			return fmt.Errorf("%w: submod %s has no device token", ErrSubmods, name)
		}
	}
	for name, t := range d.devices {
		entry, ok := sub[name]
		if !ok {
			return fmt.Errorf("%w: device token %s is not in submods", ErrSubmods, name)
		}
		alg, want, err := parseDigestEntry(entry)
		if err != nil {
			return fmt.Errorf("submod %s: %w", name, err)
		}
		alg.Write([]byte(t.raw))
		if subtle.ConstantTimeCompare(alg.Sum(nil), want) != 1 {
			return fmt.Errorf("%w: digest of device token %s differs", ErrSubmods, name)
		}
	}
	return nil
}

// parseDigestEntry decodes ["DIGEST", ["SHA-256", "<hex>"]].
func parseDigestEntry(v any) (hash.Hash, []byte, error) {
	outer, ok := v.([]any)
	if !ok || len(outer) != 2 {
		return nil, nil, fmt.Errorf("%w: not [\"DIGEST\", [alg, value]]", ErrMalformed)
	}
	if tag, _ := outer[0].(string); tag != "DIGEST" {
		return nil, nil, fmt.Errorf("%w: submod type %v, want DIGEST", ErrSubmods, outer[0])
	}
	inner, ok := outer[1].([]any)
	if !ok || len(inner) != 2 {
		return nil, nil, fmt.Errorf("%w: digest is not [alg, value]", ErrMalformed)
	}
	algName, _ := inner[0].(string)
	value, _ := inner[1].(string)
	var h hash.Hash
	switch strings.ToUpper(algName) {
	case "SHA-256", "SHA256":
		h = sha256.New()
	case "SHA-384", "SHA384":
		h = sha512.New384()
	case "SHA-512", "SHA512":
		h = sha512.New()
	default:
		return nil, nil, fmt.Errorf("%w: digest algorithm %q", ErrSubmods, inner[0])
	}
	want, err := hex.DecodeString(value)
	if err != nil || len(want) != h.Size() {
		return nil, nil, fmt.Errorf("%w: digest value is not %d bytes of hex", ErrSubmods, h.Size())
	}
	return h, want, nil
}

// checkString compares claims[name] with want; required makes absence an
// error; fold compares case-insensitively (hex).
func checkString(claims map[string]any, name, want string, required, fold bool, sentinel error) error {
	v, ok := claims[name]
	if !ok {
		if required {
			return fmt.Errorf("%w: no %s", sentinel, name)
		}
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%w: %s is not a string", sentinel, name)
	}
	if s == want || (fold && strings.EqualFold(s, want)) {
		return nil
	}
	return fmt.Errorf("%w: %s %q, want %q", sentinel, name, s, want)
}

// checkTime checks exp (required), nbf and iat (optional) at now.
func checkTime(claims map[string]any, now time.Time, leeway time.Duration) (time.Time, error) {
	exp, ok, err := numericDate(claims, "exp")
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%w: no exp", ErrExpired)
	}
	if !now.Before(exp.Add(leeway)) {
		return time.Time{}, fmt.Errorf("%w: expired at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	for _, name := range []string{"nbf", "iat"} {
		t, ok, err := numericDate(claims, name)
		if err != nil {
			return time.Time{}, err
		}
		if ok && now.Add(leeway).Before(t) {
			return time.Time{}, fmt.Errorf("%w: %s %s is in the future", ErrExpired, name, t.UTC().Format(time.RFC3339))
		}
	}
	return exp, nil
}

func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: %s is not a number", ErrMalformed, name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%w: %s is not a valid NumericDate", ErrMalformed, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// sortNames orders device names by prefix, then numeric index.
func sortNames(names []string) {
	key := func(s string) (string, int) {
		i := strings.LastIndexByte(s, '-')
		if i < 0 {
			return s, -1
		}
		n, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return s, -1
		}
		return s[:i], n
	}
	sort.Slice(names, func(a, b int) bool {
		pa, na := key(names[a])
		pb, nb := key(names[b])
		if pa != pb {
			return pa < pb
		}
		if na != nb {
			return na < nb
		}
		return names[a] < names[b]
	})
}
