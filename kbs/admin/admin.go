// Package admin implements the KBS `[admin]` section: the
// InsecureAllowAll, DenyAll and AuthenticatedAuthorization modes, bearer JWT
// authentication against configured identity providers (PEM keys or JWK
// sets), and a role → endpoint-regex ACL.
package admin

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sigil-attestation/sigil/kbs/tokenverify/jws"
)

// Mode is the `authorization_mode` of `[admin]`.
type Mode string

// Authorization modes.
const (
	InsecureAllowAll           Mode = "InsecureAllowAll"
	DenyAll                    Mode = "DenyAll"
	AuthenticatedAuthorization Mode = "AuthenticatedAuthorization"
)

// IdentityProvider is one `identity_providers` entry. At least one of
// PublicKeyURI and JWKSetURI is required; Issuer and Audience are checked
// only when set.
type IdentityProvider struct {
	Issuer, Audience, PublicKeyURI, JWKSetURI string
}

// ACLEntry allows tokens with Role to reach request URIs (path plus
// ?query) matching AllowedEndpoints, a regex that must start with "^/kbs"
// and end with "$".
type ACLEntry struct {
	Role, AllowedEndpoints string
}

// Config is the `[admin]` section.
type Config struct {
	Mode      Mode
	Providers []IdentityProvider
	ACL       []ACLEntry
}

// Options carries the injected dependencies.
type Options struct {
	HTTPClient *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	// JWKSRefreshInterval rate-limits JWK set refetches on unknown kids
	// (default 30 s).
	JWKSRefreshInterval time.Duration
}

// Authorizer decides admin requests. It is safe for concurrent use.
type Authorizer struct {
	mode      Mode
	providers []*provider
	acl       []aclEntry
	now       func() time.Time
	log       *slog.Logger
}

type provider struct {
	IdentityProvider
	pemKey crypto.PublicKey
	keySet *jws.KeySet
}

type aclEntry struct {
	role string
	re   *regexp.Regexp
}

// New validates cfg and loads the providers' keys (a failure is a startup
// error).
func New(ctx context.Context, cfg Config, opts Options) (*Authorizer, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	a := &Authorizer{mode: cfg.Mode, now: opts.Now, log: opts.Logger}
	switch cfg.Mode {
	case InsecureAllowAll, DenyAll:
		return a, nil
	case AuthenticatedAuthorization:
	default:
		return nil, fmt.Errorf("admin: unknown authorization_mode %q", cfg.Mode)
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("admin: bearer_jwt identity_providers must not be empty")
	}
	for i, idp := range cfg.Providers {
		p := &provider{IdentityProvider: idp}
		if idp.PublicKeyURI == "" && idp.JWKSetURI == "" {
			return nil, fmt.Errorf("admin: identity provider %d: public_key_uri or jwk_set_uri is required", i)
		}
		if idp.PublicKeyURI != "" {
			data, err := jws.Fetch(ctx, opts.HTTPClient, idp.PublicKeyURI)
			if err != nil {
				return nil, fmt.Errorf("admin: identity provider %d: public_key_uri: %w", i, err)
			}
			if p.pemKey, err = jws.ParsePublicKeyPEM(data); err != nil {
				return nil, fmt.Errorf("admin: identity provider %d: public_key_uri %s: %w", i, idp.PublicKeyURI, err)
			}
		}
		if idp.JWKSetURI != "" {
			ks, err := jws.NewKeySet(ctx, idp.JWKSetURI, jws.KeySetOptions{
				HTTPClient:         opts.HTTPClient,
				Now:                opts.Now,
				Logger:             opts.Logger,
				MinRefreshInterval: opts.JWKSRefreshInterval,
			})
			if err != nil {
				return nil, fmt.Errorf("admin: identity provider %d: jwk_set_uri: %w", i, err)
			}
			p.keySet = ks
		}
		a.providers = append(a.providers, p)
	}
	for _, e := range cfg.ACL {
		if !strings.HasPrefix(e.AllowedEndpoints, "^/kbs") || !strings.HasSuffix(e.AllowedEndpoints, "$") {
			return nil, fmt.Errorf("admin: ACL for role %q: %w", e.Role, ErrUnanchoredRegex)
		}
		// The group keeps a top-level alternation ("^/kbs/a|/b$") from
		// escaping the anchors: the whole URI must match.
		re, err := regexp.Compile(`^(?:` + e.AllowedEndpoints + `)$`)
		if err != nil {
			return nil, fmt.Errorf("admin: Invalid Regular Expression in Role %q: %w", e.Role, err)
		}
		a.acl = append(a.acl, aclEntry{role: e.Role, re: re})
	}
	return a, nil
}

// Mode returns the configured authorization mode.
func (a *Authorizer) Mode() Mode { return a.mode }

// Authorize allows or denies the admin request r. A denial is an
// *AccessDeniedError or a *BearerHeaderError whose Error() is the text
// Trustee reports. The ACL is matched as described at aclEntry.allows.
func (a *Authorizer) Authorize(ctx context.Context, r *http.Request) error {
	switch a.mode {
	case InsecureAllowAll:
		return nil
	case DenyAll:
		return &AccessDeniedError{Kind: DenyAllMode, Reason: reasonDenyAll}
	}
	token, err := bearerToken(r)
	if err != nil {
		return err
	}
	role, err := a.authenticate(ctx, token)
	if err != nil {
		return err
	}
	path, full := aclTargets(r)
	for _, e := range a.acl {
		if e.role == role && e.allows(path, full) {
			a.log.DebugContext(ctx, "admin request authorized", "role", role, "path", path)
			return nil
		}
	}
	return &AccessDeniedError{
		Kind:   RoleNotAllowed,
		Reason: fmt.Sprintf("Role %s not allowed for path %s", role, path),
		Role:   role,
		URI:    path,
	}
}

// aclTargets returns the strings an ACL regex is matched against: the
// request path (escaped as on the wire; the KBS has already rejected "..",
// "." and escaped slashes and collapsed empty segments) and, when the
// request has a query, the path plus "?" plus the query.
func aclTargets(r *http.Request) (path, full string) {
	path = r.URL.EscapedPath()
	if r.URL.RawQuery == "" && !r.URL.ForceQuery {
		return path, ""
	}
	return path, path + "?" + r.URL.RawQuery
}

// allows applies an ACL entry. Trustee matches the regex against the path
// plus query, so a pattern could be satisfied by text inside the query
// ("^/kbs/v0/resource/.+/public$" matched ".../secret/key/x?a=/public").
// Here the path alone must match, and when there is a query the path plus
// query must match too: a query can narrow what an entry allows, never
// widen it.
func (e aclEntry) allows(path, full string) bool {
	if !e.re.MatchString(path) {
		return false
	}
	return full == "" || e.re.MatchString(full)
}

func bearerToken(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", &BearerHeaderError{Cause: fmt.Errorf("%d Authorization headers", len(vals))}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", &BearerHeaderError{Cause: errors.New("not a Bearer credential")}
	}
	return token, nil
}

// authenticate returns the role of a token verified by one of the
// providers, tried in order.
func (a *Authorizer) authenticate(ctx context.Context, token string) (string, error) {
	tok, err := jws.Parse(token)
	if err != nil {
		return "", &AccessDeniedError{Kind: Unverified, Reason: reasonUnverified, Cause: err}
	}
	var errs []error
	for i, p := range a.providers {
		claims, err := a.verify(ctx, p, tok)
		if err != nil {
			a.log.DebugContext(ctx, "admin token not verified by identity provider", "provider", i, "issuer", p.Issuer, "error", err)
			errs = append(errs, fmt.Errorf("identity provider %d: %w", i, err))
			continue
		}
		if p.Issuer != "" {
			if iss, _ := claims["iss"].(string); iss != p.Issuer {
				a.log.WarnContext(ctx, "admin token issuer mismatch, trying the next identity provider", "expected", p.Issuer, "got", iss)
				errs = append(errs, fmt.Errorf("identity provider %d: issuer mismatch", i))
				continue
			}
		}
		if p.Audience != "" && !hasAudience(claims["aud"], p.Audience) {
			a.log.WarnContext(ctx, "admin token audience mismatch, trying the next identity provider", "expected", p.Audience)
			errs = append(errs, fmt.Errorf("identity provider %d: audience mismatch", i))
			continue
		}
		// The provider vouches for the token; it must carry a role.
		role, ok := claims["role"].(string)
		if !ok {
			return "", &AccessDeniedError{
				Kind:   BadClaims,
				Reason: "Failed to parse claims from token: Missing required `role` claim in JWT",
			}
		}
		return role, nil
	}
	return "", &AccessDeniedError{Kind: Unverified, Reason: reasonUnverified, Cause: errors.Join(errs...)}
}

func hasAudience(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// verify checks tok against one provider: the JWK set key named by `kid`
// when the provider has a JWK set and knows the kid, else the PEM key.
func (a *Authorizer) verify(ctx context.Context, p *provider, tok *jws.Token) (map[string]any, error) {
	var key crypto.PublicKey
	var lookupErr error
	if p.keySet != nil {
		if tok.Header.Kid == "" {
			lookupErr = errors.New("token has no kid")
		} else if jwk, err := p.keySet.Lookup(ctx, tok.Header.Kid); err != nil {
			lookupErr = err
		} else if jwk.Alg == "" {
			lookupErr = fmt.Errorf("JWK %q has no alg", jwk.Kid)
		} else if jwk.Alg != tok.Header.Alg {
			lookupErr = fmt.Errorf("token alg %q differs from JWK alg %q", tok.Header.Alg, jwk.Alg)
		} else {
			key = jwk.Key
		}
	}
	if key == nil {
		if p.pemKey == nil {
			return nil, lookupErr
		}
		key = p.pemKey
	}
	if err := tok.Verify(key); err != nil {
		return nil, err
	}
	claims, err := tok.Claims()
	if err != nil {
		return nil, err
	}
	if err := jws.CheckExp(claims, a.now(), jws.DefaultLeeway); err != nil {
		return nil, err
	}
	return claims, nil
}
