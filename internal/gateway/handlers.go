package gateway

import (
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/inbound"
)

// registerHandlers mounts every route's MCP endpoint and its RFC 9728
// metadata. Nothing else is served on the client-facing listener.
// JWKSPath is where mcpgate publishes the public keys of the tokens it
// mints, under server.public_base_url.
const JWKSPath = "/.well-known/jwks.json"

func (g *Gateway) registerHandlers() {
	for _, rt := range g.routes {
		g.mux.Handle(rt.path, rt)
		md := authn.MetadataHandler(authn.ResourceMetadata{
			Resource:             rt.resource,
			AuthorizationServers: rt.issuers,
			ScopesSupported:      rt.policy.BaselineScopes(),
			ResourceName:         g.cfg.Routes[g.routeIndex(rt)].ResourceName,
		})
		g.mux.Handle(authn.WellKnownPath+rt.path, md)
		if len(g.routes) == 1 {
			g.mux.Handle(authn.WellKnownPath, md)
		}
	}
	if g.keys != nil {
		// The keys upstreams verify minted tokens with (mint mode).
		g.mux.Handle(JWKSPath, g.keys.Handler())
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONRPCError(w, http.StatusNotFound, nil, codeNotFound, "no MCP endpoint at this path", nil)
	})
}

func (g *Gateway) routeIndex(rt *route) int {
	for i, r := range g.cfg.Routes {
		if r.Name == rt.name {
			return i
		}
	}
	return 0
}

// ServeHTTP dispatches to the route or metadata handler.
// After a Reload, every gateway of the chain hands requests to the one
// now serving; a request keeps the configuration it started with.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.live.Load().mux.ServeHTTP(w, r)
}

// corsPreflight answers an OPTIONS preflight from an allowed browser origin.
// Any other OPTIONS request is left to the pipeline, which refuses it like
// every request (403 for an origin not allowed, else 405) and records it.
func (rt *route) corsPreflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions || r.Header.Get("Origin") == "" || inbound.CheckOrigin(r.Header, rt.g.origins) != nil {
		return false
	}
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name")
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// corsHeaders adds the response CORS headers for an allowed origin.
func (rt *route) corsHeaders(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !rt.g.origins[strings.ToLower(origin)] {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, WWW-Authenticate")
	h.Add("Vary", "Origin")
}
