// This file implements OAuth 2.0 Protected Resource Metadata, RFC 9728: the
// path-inserted well-known URL (§3.1) and the metadata document (§2, §3.2).
// See https://www.rfc-editor.org/rfc/rfc9728

package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// WellKnownPath is the RFC 9728 well-known URI suffix.
const WellKnownPath = "/.well-known/oauth-protected-resource"

// MetadataURL returns the RFC 9728 §3.1 metadata URL of resource: the
// well-known suffix inserted between host and path (a lone "/" path is
// dropped), the query kept. resource must be an absolute http(s) URL
// without user info or fragment.
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", errors.New("metadata url: resource is not a url")
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Opaque != "" {
		return "", errors.New("metadata url: resource is not an absolute http(s) url")
	}
	if u.User != nil || u.Fragment != "" || u.RawFragment != "" || u.ForceQuery && u.RawQuery == "" {
		return "", errors.New("metadata url: resource has user info or a fragment")
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	out := u.Scheme + "://" + u.Host + WellKnownPath + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// ResourceMetadata is an RFC 9728 §2 document. Zero-valued members are
// omitted (§3.2), so there is never a "scopes_supported": [].
type ResourceMetadata struct {
	// Resource is the route's canonical resource URI. Required.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers trusted on the route.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported should be the minimal scopes for basic use.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResourceName is a human-readable name.
	ResourceName string `json:"resource_name,omitempty"`
	// BearerMethodsSupported is ignored: the document always says
	// ["header"], the only method mcpgate accepts.
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
}

// MetadataHandler serves md for GET and HEAD as application/json, with
// "Access-Control-Allow-Origin: *" so browser-based clients can read it, and
// answers CORS preflight (OPTIONS) with 204. Other methods get 405.
func MetadataHandler(md ResourceMetadata) http.Handler {
	md.BearerMethodsSupported = []string{"header"}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(md); err != nil { // cannot fail for these types
		panic("authn: encode resource metadata: " + err.Error())
	}
	body := buf.Bytes()
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", length)
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}
