package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/credential"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// attachCredential obtains what the upstream receives in place of the
// client's token (stage 5). The client's token itself is never forwarded:
// the proxy forwards headers by allow-list, and Authorization is not on it.
func (x *exchange) attachCredential() *rejection {
	src := x.rt.cred
	if src == nil {
		return nil
	}
	// A minted token may carry what the caller's scopes imply; an
	// authorization server exchanges only what the token itself holds.
	scopes := x.grant.Expanded()
	if x.rt.credMode == credential.ModeExchange {
		scopes = x.grant.Granted()
		if x.ident.Issuer != x.rt.credIssuer {
			// Configuration makes the route trust only that issuer; this
			// holds even if it did not: a token goes to its own issuer only.
			return &rejection{status: deniedStatus(x), code: codeDenied, decision: audit.Deny, reason: "credential_denied",
				message: "denied: this route exchanges only tokens issued by " + x.rt.credIssuer}
		}
	}
	c, err := src.Credential(x.r.Context(), credential.Caller{
		Token:    x.token,
		Issuer:   x.ident.Issuer,
		Subject:  x.ident.Subject,
		ClientID: x.ident.ClientID,
		Scopes:   scopes,
		Expiry:   x.ident.Expiry,
		Actor:    x.ident.Actor,
	})
	if err != nil {
		var ce *credential.Error
		if errors.As(err, &ce) && ce.Kind == credential.Denied {
			return &rejection{status: deniedStatus(x), code: codeDenied, decision: audit.Deny, reason: "credential_denied", cause: err,
				message: "denied: mcpgate could not obtain a credential for this upstream on your behalf: " + ce.Message}
		}
		msg := "mcpgate cannot obtain a credential for this upstream now; try again later"
		if ce != nil {
			msg = "mcpgate cannot obtain a credential for this upstream now (" + ce.Message + "); try again later"
		}
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "credential_unavailable", cause: err, message: msg}
	}
	if x.token != "" && strings.Contains(c.Secret, x.token) {
		// An authorization server that hands the subject token back
		// would turn the exchange into passthrough.
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "credential_unavailable", cause: errors.New("the credential obtained for the upstream is the client's own token"),
			message: "mcpgate cannot obtain a credential for this upstream now; try again later"}
	}
	x.cred = c
	if c.Secret != "" {
		x.addLive(c.Secret)
	}
	return nil
}

// deniedStatus is the HTTP status of a denial: 200 with a JSON-RPC error
// for a request (the agent reads it), 403 for anything else.
func deniedStatus(x *exchange) int {
	if x.call == nil || x.call.Msg.Kind != jsonrpc.KindRequest {
		return http.StatusForbidden
	}
	return http.StatusOK
}

// inboundToken returns the client's bearer token, kept only to make sure
// its bytes go nowhere they should not.
func inboundToken(h http.Header) string { return authn.BearerToken(h) }

// credentialKit builds the routes' credential sources, sharing what must be
// shared: one key set, and one token endpoint (with its circuit breaker)
// per authorization server and client identity.
type credentialKit struct {
	g             *Gateway
	endpoints     map[string]*credential.TokenEndpoint
	routeEndpoint map[string]*credential.TokenEndpoint // route name → its token endpoint
}

// source returns the credential source of route rc (nil for mode none).
func (k *credentialKit) source(rc config.Route) (credential.Source, error) {
	g, c := k.g, rc.Credentials
	switch c.Mode {
	case config.DefaultCredentialsMode:
		return nil, nil
	case credential.ModeMint:
		if g.keys == nil {
			mc := g.cfg.Credentials.Mint
			kc := credential.KeysConfig{Algorithm: mc.Algorithm, RotateEvery: mc.RotateEvery.D()}
			for _, f := range mc.SigningKeys {
				kc.Files = append(kc.Files, credential.KeyFile{ID: f.ID, File: f.File})
			}
			ks, err := credential.NewKeySet(kc, credential.KeyDeps{Now: g.now, Logger: g.log})
			if err != nil {
				return nil, fmt.Errorf("credentials.mint: %w", err)
			}
			g.keys = ks
		}
		return credential.NewMinter(credential.MintConfig{
			Issuer: g.cfg.Credentials.Mint.Issuer, Audience: c.Audience, Scopes: c.Scopes,
			Lifetime: c.Lifetime.D(), ClockSkew: config.DefaultClockSkew,
		}, g.keys)
	case credential.ModeExchange, credential.ModeClientCredentials:
		ep, err := k.endpoint(c)
		if err != nil {
			return nil, err
		}
		if k.routeEndpoint == nil {
			k.routeEndpoint = map[string]*credential.TokenEndpoint{}
		}
		k.routeEndpoint[rc.Name] = ep
		if c.Mode == credential.ModeExchange {
			xc := credential.ExchangeConfig{Endpoint: ep, Resource: c.Resource,
				Audience: c.Audience, Scopes: c.Scopes, Now: g.now, Logger: g.log}
			if g.tokens != nil {
				xc.Shared = g.tokens
			}
			return credential.NewExchange(xc)
		}
		return credential.NewClientCredentials(credential.ClientCredentialsConfig{Endpoint: ep, Resource: c.Resource,
			Scopes: c.Scopes, Now: g.now, Logger: g.log})
	case credential.ModeStatic:
		return credential.NewStatic(credential.StaticConfig{Header: c.Header, ValueFile: c.ValueFile, Value: c.Value,
			AllowLiteral: g.cfg.Development.AllowSecretLiterals, Now: g.now})
	}
	return nil, fmt.Errorf("credentials: unknown mode %q", c.Mode)
}

// endpoint returns the shared token endpoint client for c.
func (k *credentialKit) endpoint(c config.RouteCredentials) (*credential.TokenEndpoint, error) {
	key := strings.Join([]string{c.AuthorizationServer, c.TokenEndpoint, c.ClientID, c.AuthMethod, c.ClientSecretFile, c.ClientSecret}, "\x00")
	if ep := k.endpoints[key]; ep != nil {
		return ep, nil
	}
	g := k.g
	var as config.AuthorizationServer
	for _, a := range g.cfg.AuthorizationServers {
		if a.Issuer == c.AuthorizationServer {
			as = a
		}
	}
	client, err := issuerClient(g.cfg, as)
	if err != nil {
		return nil, fmt.Errorf("authorization server %s: %w", as.Issuer, err)
	}
	sec := credential.ClientSecretFile(c.ClientSecretFile)
	if c.ClientSecretFile == "" {
		literal := []byte(c.ClientSecret)
		sec = func() ([]byte, error) { return literal, nil }
	}
	ep, err := credential.NewTokenEndpoint(credential.TokenEndpointConfig{
		TokenURL: c.TokenEndpoint, Issuer: c.AuthorizationServer, ClientID: c.ClientID, ClientSecret: sec,
		AuthMethod: c.AuthMethod, HTTPClient: client.HTTPClient(), Logger: g.log,
		OnCall: func(call string, d time.Duration, err error) {
			g.metrics.AuthorizationServerRequestDuration.WithLabelValues(c.AuthorizationServer, call).Observe(d.Seconds())
			if err != nil {
				g.metrics.AuthorizationServerErrors.WithLabelValues(c.AuthorizationServer, call).Inc()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if k.endpoints == nil {
		k.endpoints = map[string]*credential.TokenEndpoint{}
	}
	k.endpoints[key] = ep
	return ep, nil
}
