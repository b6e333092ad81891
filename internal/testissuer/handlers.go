package testissuer

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == i.opts.Path+"/jwks":
		i.serveJWKS(w)
	case p == i.opts.Path+"/introspect":
		i.serveIntrospect(w, r)
	case strings.Contains(p, "/.well-known/"):
		i.serveMetadata(w, p)
	default:
		http.NotFound(w, r)
	}
}

func (i *Issuer) serveMetadata(w http.ResponseWriter, p string) {
	i.mu.Lock()
	i.metaRequests = append(i.metaRequests, p)
	i.noteLocked()
	i.mu.Unlock()
	m := i.opts.Metadata
	served := m&RFC8414 != 0 && p == "/.well-known/oauth-authorization-server"+i.opts.Path ||
		m&OIDCPathInsert != 0 && p == "/.well-known/openid-configuration"+i.opts.Path ||
		m&OIDCPathAppend != 0 && p == i.opts.Path+"/.well-known/openid-configuration"
	if !served {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	iss := i.opts.MetadataIssuer
	if iss == "" {
		iss = i.url
	}
	doc := map[string]any{
		"issuer":                 iss,
		"jwks_uri":               i.JWKSURL(),
		"introspection_endpoint": i.IntrospectionURL(),
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"authorization_endpoint":                        i.url + "/authorize",
		"token_endpoint":                                i.url + "/token",
		"response_types_supported":                      []string{"code"},
		"grant_types_supported":                         []string{"authorization_code", "client_credentials"},
		"code_challenge_methods_supported":              []string{"S256"},
	}
	merge(doc, i.opts.MetadataExtra)
	writeJSON(w, http.StatusOK, doc)
}

func (i *Issuer) serveJWKS(w http.ResponseWriter) {
	i.mu.Lock()
	i.jwksFetches++
	i.noteLocked()
	down, body := i.jwksDown, i.jwksBody
	doc := i.jwksLocked()
	i.mu.Unlock()
	switch {
	case down:
		http.Error(w, "jwks outage", http.StatusServiceUnavailable)
	case body != nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	default:
		writeJSON(w, http.StatusOK, doc)
	}
}

// JWKS returns the JWKS document the issuer currently publishes.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	b, _ := json.Marshal(i.jwksLocked())
	return b
}

func (i *Issuer) jwksLocked() map[string]any {
	keys := []any{}
	for _, f := range families {
		keys = append(keys, i.current[f].jwk())
	}
	for _, k := range i.retired {
		keys = append(keys, k.jwk())
	}
	return map[string]any{"keys": keys}
}

func (i *Issuer) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	i.introspectN++
	i.noteLocked()
	mode := i.introspectMode
	i.mu.Unlock()
	switch mode {
	case IntrospectionError:
		http.Error(w, "introspection broken", http.StatusInternalServerError)
		return
	case IntrospectionHang:
		select {
		case <-r.Context().Done():
		case <-i.quit:
		}
		return
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	if !i.clientAuthenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspect"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	writeJSON(w, http.StatusOK, i.introspectAnswer(r.PostForm.Get("token")))
}

// clientAuthenticated checks client_secret_basic (RFC 6749 §2.3.1: the
// id and secret are form-encoded before base64) or client_secret_post.
func (i *Issuer) clientAuthenticated(r *http.Request) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		raw, ok := strings.CutPrefix(h, "Basic ")
		if !ok || id != "" {
			return false
		}
		dec, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return false
		}
		u, p, ok := strings.Cut(string(dec), ":")
		if !ok {
			return false
		}
		if id, err = url.QueryUnescape(u); err != nil {
			return false
		}
		if secret, err = url.QueryUnescape(p); err != nil {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(i.opts.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(i.opts.ClientSecret)) == 1
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

// merge copies extra into m; a nil value deletes the member.
func merge(m, extra map[string]any) {
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
}
