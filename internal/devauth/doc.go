// Package devauth is mcpgate's embedded DEVELOPMENT authorization server.
//
// It exists so that `mcpgate demo`, `mcpgate dev-idp` and the project's
// tests run with nothing installed. It is built on zitadel/oidc's `op`
// package (discovery, authorize, token, introspection, revocation, keys),
// with an in-memory op.Storage of its own and a few pieces zitadel lacks:
// an RFC 8707 `resource` interceptor, RFC 9068 `at+jwt` access tokens, an
// RFC 7591 registration endpoint, RFC 8414 metadata and a login and consent
// page. Nothing survives a restart: users and clients come from Config,
// registered clients, codes and tokens live in memory, and the ES256 signing
// key is generated at startup.
//
// It is deliberately stricter than a general-purpose server, in the ways
// MCP needs:
//
//   - Every authorization request must carry PKCE with S256 (public and
//     confidential clients alike) and a `resource` parameter naming one of
//     Config.Resources. MCP clients always send `resource` (RFC 8707 is a
//     MUST in the MCP authorization spec); a request without one is refused
//     with invalid_target rather than given a default audience.
//   - Client credentials and token exchange requests must name their target
//     too (`resource`, or `audience` for token exchange). Code and refresh
//     token requests may repeat the resource; if they do it must be the one
//     the grant was authorized for.
//   - One resource per request: the access token's `aud` is that resource,
//     in its configured form, on every grant.
//   - Access tokens are RFC 9068 JWTs with header typ `at+jwt`, signed ES256.
//   - Only the authorization code (query response mode), refresh token,
//     client credentials and token exchange grants are served; implicit,
//     device code, JWT bearer, request objects and end_session are not.
//   - prompt=none is refused with login_required: there are no sessions, a
//     user logs in for every authorization request.
//   - Granted scopes are requested ∩ the user's ∩ the client's; a scope the
//     server does not know is refused with invalid_scope. A refresh token is
//     issued in the code flow when offline_access is granted, which needs a
//     client allowed the refresh_token grant (the SEP-2207 model). Refresh
//     tokens rotate; presenting a rotated-out one, or replaying a code,
//     revokes every token of that grant.
//   - Introspection (RFC 7662) answers any authenticated confidential client
//     (client_secret_basic); revocation (RFC 7009) accepts a client's own
//     tokens only, and revoking a refresh token revokes its grant.
//   - Logging: Config.Logger gets one line per token, login and registration,
//     identifying tokens by jti or a hash fingerprint. zitadel's op package
//     logs request errors to slog.Default; those carry error descriptions
//     and request parameters such as client_id, redirect_uri and state, but
//     no secret or token.
//
// It must never run in production: it is reachable only through the demo
// and dev-idp commands, it allows plain http, and it keeps everything in
// memory. [Server.Banner] is the warning the CLI prints.
package devauth
