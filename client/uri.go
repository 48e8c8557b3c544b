package client

import (
	"fmt"
	"net/url"
	"strings"
)

// ResourceURI names a resource behind a KBS plugin.
type ResourceURI struct {
	// Plugin is the KBS plugin, "resource" for kbs:// URIs.
	Plugin string
	// Path holds the path segments (empty segments are kept).
	Path []string
	// Query is the raw query string, forwarded verbatim; "" when absent.
	Query string
}

// ParseResourceURI parses a resource reference given either as a resource URI
// (`kbs[+<plugin>]://[host]/<seg>/…[?query]`; the host is ignored) or as a
// bare path `repo/type/tag[?query]`, which means `kbs:///repo/type/tag` — the
// same mapping Trustee's kbs-client applies to --path.
func ParseResourceURI(s string) (ResourceURI, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || strings.ContainsAny(scheme, "/?") {
		scheme, rest = "kbs", "/"+s
	} else {
		// Drop the ignored authority.
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			return ResourceURI{}, fmt.Errorf("resource URI %q: missing path", s)
		}
		rest = rest[i:]
	}
	var plugin string
	switch {
	case scheme == "kbs":
		plugin = "resource"
	case strings.HasPrefix(scheme, "kbs+"):
		plugin = strings.TrimPrefix(scheme, "kbs+")
		if plugin == "" {
			return ResourceURI{}, fmt.Errorf("resource URI %q: empty plugin name", s)
		}
	default:
		return ResourceURI{}, fmt.Errorf("resource URI %q: scheme must be kbs or kbs+<plugin>", s)
	}
	path, query, _ := strings.Cut(rest, "?")
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return ResourceURI{}, fmt.Errorf("resource URI %q: missing path", s)
	}
	if strings.ContainsRune(plugin, '/') {
		return ResourceURI{}, fmt.Errorf("resource URI %q: invalid plugin name", s)
	}
	return ResourceURI{Plugin: plugin, Path: strings.Split(path, "/"), Query: query}, nil
}

// relative returns the request path below /kbs/v0/, escaped, with the query.
func (u ResourceURI) relative() string {
	return escapeSegments(append([]string{u.Plugin}, u.Path...), u.Query)
}

// escapeSegments joins path segments, escaping each, and appends query.
func escapeSegments(segs []string, query string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	out := strings.Join(esc, "/")
	if query != "" {
		out += "?" + query
	}
	return out
}

// escapePath escapes a slash-separated path segment by segment.
func escapePath(p string) string { return escapeSegments(strings.Split(p, "/"), "") }
