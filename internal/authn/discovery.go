// This file implements authorization server metadata discovery per RFC 8414
// §3 and OpenID Connect Discovery 1.0 §4, in the probe order of the MCP
// 2025-11-25 authorization spec, with the issuer check of RFC 8414 §3.3.
// See https://www.rfc-editor.org/rfc/rfc8414#section-3 and
// https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization

package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/internal/egress"
)

// serverMetadata is the part of AS metadata mcpgate uses.
type serverMetadata struct {
	jwksURI               string
	introspectionEndpoint string
}

// metadataURLs returns the discovery URLs to try, in order:
//
//	issuer with path /t:  /.well-known/oauth-authorization-server/t,
//	                      /.well-known/openid-configuration/t,
//	                      /t/.well-known/openid-configuration
//	issuer without path:  /.well-known/oauth-authorization-server,
//	                      /.well-known/openid-configuration
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("issuer is not an absolute url")
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	if path == "" {
		return []string{
			base + "/.well-known/oauth-authorization-server",
			base + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		base + "/.well-known/oauth-authorization-server" + path,
		base + "/.well-known/openid-configuration" + path,
		base + path + "/.well-known/openid-configuration",
	}, nil
}

// discover fetches the issuer's metadata from the first location that
// serves a document whose "issuer" equals the configured issuer byte for
// byte. A document naming another issuer is never used.
func discover(ctx context.Context, hc *egress.Client, issuer string) (*serverMetadata, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		md, err := fetchMetadata(ctx, hc, u, issuer)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errIssuerMismatch = errors.New("metadata issuer does not match the configured issuer")

func fetchMetadata(ctx context.Context, hc *egress.Client, u, issuer string) (*serverMetadata, error) {
	var raw json.RawMessage
	if err := hc.GetJSON(ctx, u, &raw); err != nil {
		return nil, err
	}
	o, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", u, err)
	}
	str := func(name string) (string, error) {
		v, ok := o.get(name)
		if !ok || string(v) == "null" {
			return "", nil
		}
		s, ok := jsonString(v)
		if !ok {
			return "", fmt.Errorf("metadata %s: %s is not a string", u, name)
		}
		return s, nil
	}
	iss, err := str("issuer")
	if err != nil {
		return nil, err
	}
	if iss != issuer {
		return nil, fmt.Errorf("metadata %s: %w", u, errIssuerMismatch)
	}
	md := &serverMetadata{}
	if md.jwksURI, err = str("jwks_uri"); err != nil {
		return nil, err
	}
	if md.introspectionEndpoint, err = str("introspection_endpoint"); err != nil {
		return nil, err
	}
	for _, v := range []string{md.jwksURI, md.introspectionEndpoint} {
		if v == "" {
			continue
		}
		if p, err := url.Parse(v); err != nil || !p.IsAbs() || p.Host == "" {
			return nil, fmt.Errorf("metadata %s: endpoint is not an absolute url", u)
		}
	}
	return md, nil
}
