package kbs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/sigil-attestation/sigil/storage"
)

// PluginRequest is what a plugin sees of a request under /kbs/v0/<plugin>/.
type PluginRequest struct {
	Method string
	// Path is the path after the plugin name, split on "/".
	Path  []string
	Query map[string]string
	Body  []byte
	// InitDataClaims are the init-data claims of the verified token (token
	// path only; nil on admin calls).
	InitDataClaims any
}

// Plugin serves one /kbs/v0/<name>/ subtree. Built-in plugins are compiled
// in and chosen by config.
type Plugin interface {
	// RequiresAdmin reports whether req is an admin operation (true) or a
	// workload operation gated by an attestation token and the resource
	// policy (false).
	RequiresAdmin(req *PluginRequest) bool
	// Encrypted reports whether the response to req must be JWE-encrypted
	// to the TEE key from the token.
	Encrypted(req *PluginRequest) bool
	// Handle serves req.
	Handle(ctx context.Context, req *PluginRequest) ([]byte, error)
}

// ErrResourceNotFound is returned by plugins when the addressed item does not exist.
var ErrResourceNotFound = errors.New("resource not found")

// resourcePathRE is one segment of a resource path: no leading dot.
var resourcePathRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)

// ValidResourcePath reports whether parts is a valid repo/type/tag path.
func ValidResourcePath(parts []string) error {
	if len(parts) != 3 {
		return fmt.Errorf("resource path must have 3 segments repo/type/tag, got %d", len(parts))
	}
	for _, p := range parts {
		if len(p) > 255 || !resourcePathRE.MatchString(p) {
			return fmt.Errorf("invalid resource path segment %q", p)
		}
	}
	return nil
}

// ResourcePlugin is the "resource" plugin backed by a key-value namespace.
type ResourcePlugin struct {
	Store storage.Store
	// MaxSize bounds a stored resource (0: no limit beyond the body limit).
	MaxSize int
}

// RequiresAdmin: POST and DELETE are admin operations.
func (p *ResourcePlugin) RequiresAdmin(req *PluginRequest) bool {
	return req.Method == http.MethodPost || req.Method == http.MethodDelete
}

// Encrypted: GET responses are JWE.
func (p *ResourcePlugin) Encrypted(req *PluginRequest) bool { return req.Method == http.MethodGet }

// Handle reads, writes or deletes a resource.
func (p *ResourcePlugin) Handle(ctx context.Context, req *PluginRequest) ([]byte, error) {
	if err := ValidResourcePath(req.Path); err != nil {
		return nil, err
	}
	key := strings.Join(req.Path, "/")
	switch req.Method {
	case http.MethodGet:
		b, err := p.Store.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrResourceNotFound, key)
		}
		return b, err
	case http.MethodPost:
		if p.MaxSize > 0 && len(req.Body) > p.MaxSize {
			return nil, fmt.Errorf("resource of %d bytes exceeds the limit of %d", len(req.Body), p.MaxSize)
		}
		return nil, p.Store.Set(ctx, key, req.Body)
	case http.MethodDelete:
		err := p.Store.Delete(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrResourceNotFound, key)
		}
		return nil, err
	}
	return nil, fmt.Errorf("illegal HTTP method %s", req.Method)
}

// SamplePlugin is Trustee's "sample" plugin: admin-gated, returns a fixed text.
type SamplePlugin struct{ Item string }

func (p *SamplePlugin) RequiresAdmin(*PluginRequest) bool { return true }
func (p *SamplePlugin) Encrypted(*PluginRequest) bool     { return false }
func (p *SamplePlugin) Handle(context.Context, *PluginRequest) ([]byte, error) {
	return []byte("sample plugin response"), nil
}
