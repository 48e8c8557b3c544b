package client

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// TokenClient fetches resources with an attestation token ("passport" mode):
// it never attests and sends Authorization: Bearer <token>.
type TokenClient struct {
	t     *transport
	token string
	key   crypto.PrivateKey
}

// NewTokenClient returns a client that presents token and decrypts responses
// with teeKey, whose public half must be the tee-pubkey inside the token.
func NewTokenClient(baseURL string, token string, teeKey crypto.PrivateKey, opts Options) (*TokenClient, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New("token client: empty token")
	}
	if teeKey == nil {
		return nil, errors.New("token client: nil TEE key")
	}
	t, err := newTransport(baseURL, opts)
	if err != nil {
		return nil, err
	}
	return &TokenClient{t: t, token: token, key: teeKey}, nil
}

// GetResource fetches and decrypts a resource (path as for RCAR.GetResource).
// The token is fixed, so a 401 is final: it wraps ErrUnauthorized; 404 wraps
// ErrResourceNotFound.
func (c *TokenClient) GetResource(ctx context.Context, path string) ([]byte, error) {
	uri, err := ParseResourceURI(path)
	if err != nil {
		return nil, err
	}
	status, body, err := c.t.do(ctx, http.MethodGet, uri.relative(), "", nil, c.token, maxResourceResponse)
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusOK:
		return decryptResponse(c.key, body)
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, newServerError(status, body))
	}
	return nil, resourceStatusError(status, body)
}
