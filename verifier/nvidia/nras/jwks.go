package nras

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

type jwk struct {
	Kty string   `json:"kty"`
	Crv string   `json:"crv"`
	Kid string   `json:"kid"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	X5C []string `json:"x5c"`
}

// ParseJWKS parses a JWKS document ({"keys":[…]}) into the P-384 EC keys it
// holds, by kid. Keys of other types or curves are skipped; an EC P-384 key
// whose x/y and x5c[0] disagree, or a kid listed twice, is an error. A
// document without a usable key is an error (ErrJWKS).
func ParseJWKS(data []byte) (StaticKeys, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	keys := make(StaticKeys, len(doc.Keys))
	for i, k := range doc.Keys {
		if k.Kty != "EC" || k.Crv != "P-384" {
			continue
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("%w: key %d has no kid", ErrJWKS, i)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("%w: kid %q listed twice", ErrJWKS, k.Kid)
		}
		pub, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: kid %q: %v", ErrJWKS, k.Kid, err)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no EC P-384 key", ErrJWKS)
	}
	return keys, nil
}

func (k *jwk) publicKey() (*ecdsa.PublicKey, error) {
	var fromXY, fromCert *ecdsa.PublicKey
	if k.X != "" || k.Y != "" {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != 48 {
			return nil, errors.New("x is not 48 bytes of base64url")
		}
		y, err := base64.RawURLEncoding.DecodeString(k.Y)
		if err != nil || len(y) != 48 {
			return nil, errors.New("y is not 48 bytes of base64url")
		}
		pt := make([]byte, 0, 97)
		pt = append(append(append(pt, 4), x...), y...)
		if fromXY, err = ecdsa.ParseUncompressedPublicKey(elliptic.P384(), pt); err != nil {
			return nil, err
		}
	}
	if len(k.X5C) > 0 {
		der, err := base64.StdEncoding.DecodeString(k.X5C[0])
		if err != nil {
			return nil, fmt.Errorf("x5c[0]: %v", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[0]: %v", err)
		}
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P384() {
			return nil, errors.New("x5c[0] key is not EC P-384")
		}
		fromCert = pub
	}
	switch {
	case fromXY != nil && fromCert != nil:
		if !fromXY.Equal(fromCert) {
			return nil, errors.New("x/y and x5c[0] keys differ")
		}
		return fromXY, nil
	case fromXY != nil:
		return fromXY, nil
	case fromCert != nil:
		return fromCert, nil
	}
	return nil, errors.New("neither x/y nor x5c")
}

// keyCache holds the fetched JWKS and refreshes it on unknown kids, at most
// once per minRefresh.
type keyCache struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	log        *slog.Logger

	fetchMu sync.Mutex // serialises fetches

	mu        sync.RWMutex
	keys      StaticKeys // replaced, never mutated
	lastFetch time.Time  // last fetch attempt (zero: never)
}

// resolve returns a KeySet holding every kid, fetching the JWKS when one is
// unknown and the rate limit allows.
func (c *keyCache) resolve(ctx context.Context, kids []string) (KeySet, error) {
	if keys, ok := c.have(kids); ok {
		return keys, nil
	}
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if keys, ok := c.have(kids); ok {
		return keys, nil // fetched meanwhile
	}
	c.mu.RLock()
	last := c.lastFetch
	c.mu.RUnlock()
	now := c.now()
	if !last.IsZero() && now.Sub(last) < c.minRefresh {
		return nil, fmt.Errorf("%w: %v (JWKS refreshed %s ago; next refresh allowed after %s)",
			ErrUnknownKey, kids, now.Sub(last).Round(time.Second), c.minRefresh)
	}
	keys, err := c.fetch(ctx)
	c.mu.Lock()
	c.lastFetch = now
	if err == nil {
		c.keys = keys
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.log.DebugContext(ctx, "nras: JWKS fetched", "url", c.url, "keys", len(keys))
	if keys, ok := c.have(kids); ok {
		return keys, nil
	}
	return c.keysSnapshot(), nil // Key reports the unknown kid
}

func (c *keyCache) keysSnapshot() StaticKeys {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.keys == nil {
		return StaticKeys{}
	}
	return c.keys
}

func (c *keyCache) have(kids []string) (StaticKeys, bool) {
	keys := c.keysSnapshot()
	for _, k := range kids {
		if _, ok := keys[k]; !ok {
			return nil, false
		}
	}
	return keys, true
}

func (c *keyCache) fetch(ctx context.Context) (StaticKeys, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrJWKS, ErrTransport, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrJWKS, ErrTransport, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %w", ErrJWKS, statusError(resp.StatusCode, body))
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("%w: %w", ErrJWKS, ErrResponseTooLarge)
	}
	return ParseJWKS(body)
}
