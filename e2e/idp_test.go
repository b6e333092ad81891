package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// The TestIdP* tests back the guides in docs/idp: each runs the guide's
// mcpgate YAML verbatim (placeholders replaced, plus only
// development.insecure_allow_http_loopback) and sends it tokens shaped
// exactly as that identity provider issues them, then the near misses a
// deployment meets: another route's token, an ID token, the wrong issuer
// form, scopes in a claim the guide does not read, a missing scope.

const (
	docsPath = "/servers/docs/mcp"
	mailPath = "/servers/mail/mcp"
)

// guideGateway starts one gateway with the guide's configuration, its
// placeholders replaced by repl plus the public base URL and the upstream.
func guideGateway(t *testing.T, file string, repl ...string) (string, *auditRecorder) {
	t.Helper()
	up := startIdPUpstream(t)
	return startIdPGateway(t, func(base string) *config.Config {
		all := append([]string{
			"https://mcp.example.com", base,
			"http://docs.mcp.svc:7001/mcp", up,
			"http://mail.mcp.svc:7002/mcp", up,
		}, repl...)
		return guideConfig(t, file, all...)
	})
}

func TestIdPKeycloak(t *testing.T) {
	iss := testissuer.New(t, testissuer.Options{Path: "/realms/mcp", Metadata: testissuer.RFC8414 | testissuer.OIDCPathAppend})
	base, rec := guideGateway(t, "keycloak.md", "https://YOUR-KEYCLOAK-HOST/realms/YOUR-REALM", iss.URL())
	docs := base + docsPath
	iat, exp := times()
	kcHeader := header{raw: `{"alg":"RS256","typ" : "JWT","kid" : "KID"}`}
	user := func(aud any, scope string, edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"exp": exp, "iat": iat, "auth_time": iat, "jti": "onrtac:5b0f8f4e-2b1c-4b8e-9e53-1c2d3e4f5a6b",
			"iss": iss.URL(), "aud": aud, "sub": "8befeac4-8963-49da-a9ac-f310e8d922d8", "typ": "Bearer",
			"azp": "claude-desktop", "sid": "54db1502-a5dc-4a27-af62-eeef0694a628",
			"realm_access":    map[string]any{"roles": []string{"default-roles-mcp", "offline_access"}},
			"resource_access": map[string]any{"account": map[string]any{"roles": []string{"view-profile"}}},
			"scope":           scope, "email_verified": true, "preferred_username": "alice",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	docsAud := []string{docs, "account"}
	access := shaped(t, iss, kcHeader, user(docsAud, "openid profile docs:read", nil))
	service := shaped(t, iss, kcHeader, map[string]any{
		"exp": exp, "iat": iat, "jti": "trrtcc:0c5e7b0a-9d7e-4a41-8d8c-7c9d1e2f3a4b", "iss": iss.URL(), "aud": docs,
		"sub": "3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "typ": "Bearer", "azp": "reporting-agent", "client_id": "reporting-agent",
		"scope": "docs:read docs:write profile email", "preferred_username": "service-account-reporting-agent",
		"realm_access": map[string]any{"roles": []string{"default-roles-mcp"}},
	})
	runIdPChecks(t, base, rec, []idpCheck{
		{name: "auth code token (typ JWT, azp, aud array with account)", route: docsPath, token: access, accept: true,
			wantSubject: "8befeac4-8963-49da-a9ac-f310e8d922d8", wantClient: "claude-desktop",
			wantScopes: []string{"docs:read", "openid", "profile"}, wantTools: []string{"search"}, call: "search"},
		{name: "at+jwt variant (client switched to RFC 9068)", route: docsPath, accept: true,
			token:       shaped(t, iss, header{typ: "at+jwt"}, user(docs, "docs:read docs:write", nil)),
			wantSubject: "8befeac4-8963-49da-a9ac-f310e8d922d8", wantClient: "claude-desktop",
			wantScopes: []string{"docs:read", "docs:write"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "service account (client credentials)", route: docsPath, token: service, accept: true,
			wantSubject: "3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", wantClient: "reporting-agent",
			wantScopes: []string{"docs:read", "docs:write", "email", "profile"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "docs:read token calling update_document steps up", route: docsPath, token: access,
			stepUp: "update_document", stepUpScope: "docs:write"},
		{name: "docs token at the mail route", route: mailPath, token: access, status: http.StatusUnauthorized, reason: "wrong_audience"},
		{name: "no audience mapper: aud account only", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, kcHeader, user("account", "openid profile", nil))},
		{name: "ID token", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, kcHeader, user("claude-desktop", "", func(c map[string]any) {
				c["typ"], c["nonce"], c["at_hash"] = "ID", "Dgm3-itbf_5ZSwkb-uvSYw", "JyMVmkVDihFu5cignwASQQ"
				delete(c, "scope")
				delete(c, "realm_access")
				delete(c, "resource_access")
			}))},
		{name: "legacy /auth/realms issuer", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: shaped(t, iss, kcHeader, user(docsAud, "docs:read", func(c map[string]any) {
				c["iss"] = "https://keycloak.example.com/auth/realms/mcp"
			}))},
		{name: "refresh token (HS512) as bearer", route: docsPath, status: http.StatusUnauthorized, reason: "bad_alg",
			token: hs512(t, `{"alg":"HS512","typ" : "JWT","kid" : "6899"}`, user(iss.URL(), "openid docs:read", func(c map[string]any) {
				c["typ"] = "Refresh"
			}))},
		{name: "no sub (basic scope removed)", route: docsPath, status: http.StatusUnauthorized, reason: "no_sub",
			token: shaped(t, iss, kcHeader, user(docsAud, "docs:read", func(c map[string]any) { delete(c, "sub") }))},
		{name: "permission as a realm role, not a scope", route: docsPath, status: http.StatusForbidden, reason: "insufficient_scope",
			token: shaped(t, iss, kcHeader, user(docsAud, "openid profile", func(c map[string]any) {
				c["realm_access"] = map[string]any{"roles": []string{"docs:read"}}
			}))},
	})
}

func TestIdPAuth0(t *testing.T) {
	keys := testissuer.New(t, testissuer.Options{})
	issuer := slashIssuer(t, keys) // "http://127.0.0.1:port/", Auth0's trailing slash
	base, rec := guideGateway(t, "auth0.md", "https://YOUR-AUTH0-DOMAIN/", issuer)
	docs, mail := base+docsPath, base+mailPath
	iat, exp := times()
	userinfo := issuer + "userinfo"
	rfc9068 := func(aud any, scope string, edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": issuer, "sub": "auth0|6553da60a54af58e29493993", "aud": aud,
			"client_id": "K1AUPhZq8mRi0Q0pjhkfu1D7y6KjDQja", "exp": exp, "iat": iat,
			"jti": "73WakrfVbNJBaAmhQtEeDv", "scope": scope,
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	at := header{typ: "at+jwt"}
	user := shaped(t, keys, at, rfc9068([]string{docs, userinfo}, "openid profile docs:read", nil))
	m2m := shaped(t, keys, at, rfc9068(docs, "docs:read docs:write", func(c map[string]any) {
		c["sub"], c["client_id"] = "awZfdIir8YFdGZWkvCejDoUb7SjTDicx@clients", "awZfdIir8YFdGZWkvCejDoUb7SjTDicx"
	}))
	// Auth0 "opaque" token for /userinfo only: five JWE segments.
	jwe := "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiaXNzIjoiaHR0cHM6Ly9hY21lLmF1dGgwLmNvbS8ifQ..c2FtcGxlLWl2LTEy.Y2lwaGVydGV4dA.dGFnLXRhZy10YWctdGFn"
	runIdPChecks(t, base, rec, []idpCheck{
		{name: "user token, RFC 9068 profile, aud with userinfo", route: docsPath, token: user, accept: true,
			wantSubject: "auth0|6553da60a54af58e29493993", wantClient: "K1AUPhZq8mRi0Q0pjhkfu1D7y6KjDQja",
			wantScopes: []string{"docs:read", "openid", "profile"}, wantTools: []string{"search"}, call: "search"},
		{name: "machine-to-machine token, RFC 9068 profile", route: docsPath, token: m2m, accept: true,
			wantSubject: "awZfdIir8YFdGZWkvCejDoUb7SjTDicx@clients", wantClient: "awZfdIir8YFdGZWkvCejDoUb7SjTDicx",
			wantScopes: []string{"docs:read", "docs:write"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "docs:read token calling update_document steps up", route: docsPath, token: user,
			stepUp: "update_document", stepUpScope: "docs:write"},
		{name: "docs:write only in the RBAC permissions claim", route: docsPath,
			token: shaped(t, keys, at, rfc9068([]string{docs, userinfo}, "openid docs:read", func(c map[string]any) {
				c["permissions"] = []string{"docs:read", "docs:write"}
			})),
			stepUp: "update_document", stepUpScope: "docs:write"},
		{name: "Auth0 profile token (typ JWT, azp, gty)", route: docsPath, status: http.StatusUnauthorized, reason: "bad_type",
			token: shaped(t, keys, header{typ: "JWT"}, map[string]any{
				"iss": issuer, "sub": "awZfdIir8YFdGZWkvCejDoUb7SjTDicx@clients", "aud": docs,
				"azp": "awZfdIir8YFdGZWkvCejDoUb7SjTDicx", "gty": "client-credentials",
				"exp": exp, "iat": iat, "scope": "docs:read",
			})},
		{name: "ID token", route: docsPath, status: http.StatusUnauthorized, reason: "bad_type",
			token: shaped(t, keys, header{typ: "JWT"}, map[string]any{
				"iss": issuer, "sub": "auth0|6553da60a54af58e29493993", "aud": "K1AUPhZq8mRi0Q0pjhkfu1D7y6KjDQja",
				"exp": exp, "iat": iat, "nonce": "n-0S6_WzA2Mj", "sid": "s1", "name": "Alice",
			})},
		{name: "mail API token at the docs route", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, keys, at, rfc9068([]string{mail, userinfo}, "openid mail:send", nil))},
		{name: "issuer without the trailing slash", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: shaped(t, keys, at, rfc9068(docs, "docs:read", func(c map[string]any) {
				c["iss"] = issuer[:len(issuer)-1]
			}))},
		{name: "no API selected: JWE for userinfo", route: docsPath, token: jwe, status: http.StatusUnauthorized, reason: "malformed"},
	})
}

func TestIdPOkta(t *testing.T) {
	meta := testissuer.Options{Metadata: testissuer.OIDCPathAppend}
	meta.Path = "/oauth2/aus8docs5zr3dXtG0x7"
	docsAS := testissuer.New(t, meta)
	meta.Path = "/oauth2/aus8mail9kq2LmNo1y8"
	mailAS := testissuer.New(t, meta)
	base, rec := guideGateway(t, "okta.md",
		"https://YOUR-OKTA-DOMAIN/oauth2/YOUR-DOCS-AUTH-SERVER-ID", docsAS.URL(),
		"https://YOUR-OKTA-DOMAIN/oauth2/YOUR-MAIL-AUTH-SERVER-ID", mailAS.URL())
	docs, mail := base+docsPath, base+mailPath
	iat, exp := times()
	okta := func(iss, aud string, scp []string, edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"ver": 1, "jti": "AT.0wMxViLUPG0jZYKJbScQOHw9IDdf-6K_LZhM8xqyCyk", "iss": iss, "aud": aud,
			"iat": iat, "exp": exp, "cid": "0oa3wuq8smhwCciv41d2", "uid": "00u7eb49xxovmQpID1d2",
			"scp": scp, "auth_time": iat, "sub": "alice@example.com",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	none := header{} // Okta: {"kid":…,"alg":"RS256"}, no typ
	user := shaped(t, docsAS, none, okta(docsAS.URL(), docs, []string{"openid", "docs:read"}, nil))
	orgURL := strings.TrimSuffix(docsAS.URL(), "/oauth2/aus8docs5zr3dXtG0x7")
	runIdPChecks(t, base, rec, []idpCheck{
		{name: "user token (no typ, cid, uid, scp array, ver 1)", route: docsPath, token: user, accept: true,
			wantSubject: "alice@example.com", wantClient: "0oa3wuq8smhwCciv41d2",
			wantScopes: []string{"docs:read", "openid"}, wantTools: []string{"search"}, call: "search"},
		{name: "client credentials token", route: docsPath, accept: true,
			token: shaped(t, docsAS, none, okta(docsAS.URL(), docs, []string{"docs:read", "docs:write"}, func(c map[string]any) {
				c["sub"], c["cid"] = "0oa9agent7Xy2Zq4p1d8", "0oa9agent7Xy2Zq4p1d8"
				delete(c, "uid")
				delete(c, "auth_time")
			})),
			wantSubject: "0oa9agent7Xy2Zq4p1d8", wantClient: "0oa9agent7Xy2Zq4p1d8",
			wantScopes: []string{"docs:read", "docs:write"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "docs:read token calling update_document steps up", route: docsPath, token: user,
			stepUp: "update_document", stepUpScope: "docs:write"},
		{name: "mail server token at the docs route", route: docsPath, status: http.StatusUnauthorized, reason: "issuer_not_allowed",
			token: shaped(t, mailAS, none, okta(mailAS.URL(), mail, []string{"mail:send"}, nil))},
		{name: "audience left at api://default", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, docsAS, none, okta(docsAS.URL(), "api://default", []string{"docs:read"}, nil))},
		{name: "built-in default server", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: shaped(t, docsAS, none, okta(orgURL+"/oauth2/default", docs, []string{"docs:read"}, nil))},
		{name: "org authorization server", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: shaped(t, docsAS, none, okta(orgURL, orgURL, []string{"openid", "docs:read"}, nil))},
		{name: "ID token", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, docsAS, none, map[string]any{
				"sub": "00u7eb49xxovmQpID1d2", "name": "Alice", "email": "alice@example.com", "ver": 1,
				"iss": docsAS.URL(), "aud": "0oa3wuq8smhwCciv41d2", "iat": iat, "exp": exp,
				"jti": "ID.radCQMOQUmyvcTBmmIL0J6BaS60apUEiC7-vI7pOmkw", "amr": []string{"pwd"},
				"idp": "00o1hywd0kSg7kwef1d7", "nonce": "n-0S6_WzA2Mj", "preferred_username": "alice@example.com",
				"auth_time": iat, "at_hash": "fPlsvVszI29LU2UhDyJ9vg",
			})},
		{name: "scopes in a scope string, not scp", route: docsPath, status: http.StatusForbidden, reason: "insufficient_scope",
			token: shaped(t, docsAS, none, okta(docsAS.URL(), docs, nil, func(c map[string]any) {
				delete(c, "scp")
				c["scope"] = "openid docs:read"
			}))},
	})
}

func TestIdPEntraID(t *testing.T) {
	const (
		tid       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		docsAppID = "6e2f5a4b-3c1d-4e8f-9a0b-1c2d3e4f5a6b"
		mailAppID = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
		clientApp = "aebc6443-996d-45c2-90f0-388ff96faa56"
		agentApp  = "5d1c2b3a-4f6e-4d7c-8b9a-0f1e2d3c4b5a"
		graph     = "00000003-0000-0000-c000-000000000000"
	)
	iss := testissuer.New(t, testissuer.Options{Path: "/" + tid + "/v2.0", Metadata: testissuer.OIDCPathAppend})
	base, rec := guideGateway(t, "entra-id.md",
		"https://login.microsoftonline.com/YOUR-TENANT-ID/v2.0", iss.URL(),
		"YOUR-DOCS-API-APP-ID", docsAppID, "YOUR-MAIL-API-APP-ID", mailAppID)
	iat, exp := times()
	jwt := header{typ: "JWT"}
	v2 := func(aud string, edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"aud": aud, "iss": iss.URL(), "iat": iat, "nbf": iat, "exp": exp,
			"aio": "AWQAm/8TAAAA", "azp": clientApp, "azpacr": "0", "name": "Alice",
			"oid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "preferred_username": "alice@contoso.com",
			"rh": "0.AXEAv4j5cvGGr0GRqy180BHbR0", "scp": "docs.read", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
			"tid": tid, "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	delegated := shaped(t, iss, jwt, v2(docsAppID, nil))
	idToken := func(aud string, edit func(map[string]any)) string {
		c := map[string]any{
			"aud": aud, "iss": iss.URL(), "iat": iat, "nbf": iat, "exp": exp, "name": "Alice",
			"nonce": "678910", "oid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "preferred_username": "alice@contoso.com",
			"rh": "0.AXEAv4j5cvGGr0GRqy180BHbR0", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
			"tid": tid, "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0", "aio": "AWQAm/8TAAAA",
		}
		if edit != nil {
			edit(c)
		}
		return shaped(t, iss, jwt, c)
	}
	v1 := func(aud, scp string) string {
		return shaped(t, iss, header{typ: "JWT", extra: map[string]any{"x5t": iss.KID("RS256")}}, map[string]any{
			"aud": aud, "iss": "https://sts.windows.net/" + tid + "/", "iat": iat, "nbf": iat, "exp": exp,
			"acr": "1", "aio": "AWQAm/8TAAAA", "amr": []string{"pwd"}, "appid": clientApp, "appidacr": "0",
			"name": "Alice", "oid": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "scp": scp,
			"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": tid, "unique_name": "alice@contoso.com",
			"uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "1.0",
		})
	}
	runIdPChecks(t, base, rec, []idpCheck{
		{name: "delegated v2 token (typ JWT, GUID aud, azp, scp string)", route: docsPath, token: delegated, accept: true,
			wantSubject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", wantClient: clientApp,
			wantScopes: []string{"docs.read"}, wantTools: []string{"search"}, call: "search"},
		{name: "app-only v2 token (roles, idtyp app)", route: docsPath, accept: true,
			token: shaped(t, iss, jwt, v2(docsAppID, func(c map[string]any) {
				for _, k := range []string{"scp", "name", "preferred_username"} {
					delete(c, k)
				}
				c["azp"], c["azpacr"], c["idtyp"] = agentApp, "1", "app"
				c["oid"], c["sub"] = "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819"
				c["roles"] = []string{"docs.read", "docs.write"}
			})),
			wantSubject: "2b3c4d5e-6f70-4819-a2b3-c4d5e6f70819", wantClient: agentApp,
			wantScopes: []string{"docs.read", "docs.write"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "docs.read token calling update_document steps up", route: docsPath, token: delegated,
			stepUp: "update_document", stepUpScope: "docs.write"},
		{name: "user app role in roles is not read when scp is present", route: docsPath,
			token:  shaped(t, iss, jwt, v2(docsAppID, func(c map[string]any) { c["roles"] = []string{"docs.write"} })),
			stepUp: "update_document", stepUpScope: "docs.write"},
		{name: "mail API token (another API's GUID) at the docs route", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, jwt, v2(mailAppID, func(c map[string]any) { c["scp"] = "mail.send" }))},
		{name: "Microsoft Graph token", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: v1(graph, "User.Read openid profile email")},
		{name: "v1 token for the docs API (manifest left at v1)", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: v1("api://"+docsAppID, "docs.read")},
		{name: "ID token of the MCP client", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: idToken(clientApp, nil)},
		// An Entra ID token names no client (no azp, no appid): refused even
		// when its aud is an API's id, i.e. when one registration is both
		// client and API, and even when the user holds an app role.
		{name: "ID token of a registration that is client and API", route: docsPath, status: http.StatusUnauthorized, reason: "no_client_id",
			token: idToken(docsAppID, nil)},
		{name: "that ID token with the user's app role", route: docsPath, status: http.StatusUnauthorized, reason: "no_client_id",
			token: idToken(docsAppID, func(c map[string]any) { c["roles"] = []string{"docs.read"} })},
	})
}

func TestIdPOryHydra(t *testing.T) {
	iss := testissuer.New(t, testissuer.Options{Metadata: testissuer.OIDCPathInsert})
	base, rec := guideGateway(t, "ory-hydra.md", "https://YOUR-HYDRA-PUBLIC-URL", iss.URL())
	docs, mail := base+docsPath, base+mailPath
	iat, exp := times()
	hydra := func(aud []string, scp []string, edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"aud": aud, "client_id": "claude-desktop", "exp": exp, "ext": map[string]any{},
			"iat": iat, "iss": iss.URL(), "jti": "1f8a5c2e-6b3d-4e7f-9a01-2b3c4d5e6f70", "nbf": iat,
			"scp": scp, "sub": "6f1c9f8e-3b2a-4d5c-8e7f-1a2b3c4d5e6f",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	jwt := header{typ: "JWT"}
	user := shaped(t, iss, jwt, hydra([]string{docs}, []string{"openid", "offline_access", "docs:read"}, nil))
	runIdPChecks(t, base, rec, []idpCheck{
		{name: "auth code token (typ JWT, aud array, client_id, scp array, ext)", route: docsPath, token: user, accept: true,
			wantSubject: "6f1c9f8e-3b2a-4d5c-8e7f-1a2b3c4d5e6f", wantClient: "claude-desktop",
			wantScopes: []string{"docs:read", "offline_access", "openid"}, wantTools: []string{"search"}, call: "search"},
		{name: "client credentials token", route: docsPath, accept: true,
			token: shaped(t, iss, jwt, hydra([]string{docs}, []string{"docs:read", "docs:write"}, func(c map[string]any) {
				c["sub"], c["client_id"] = "reporting-agent", "reporting-agent"
			})),
			wantSubject: "reporting-agent", wantClient: "reporting-agent",
			wantScopes: []string{"docs:read", "docs:write"}, wantTools: []string{"search", "update_document"}, call: "update_document"},
		{name: "docs:read token calling update_document steps up", route: docsPath, token: user,
			stepUp: "update_document", stepUpScope: "docs:write"},
		{name: "resource ignored: empty aud", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, jwt, hydra([]string{}, []string{"openid", "docs:read"}, nil))},
		{name: "mail route token at the docs route", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, jwt, hydra([]string{mail}, []string{"mail:send"}, nil))},
		{name: "ID token", route: docsPath, status: http.StatusUnauthorized, reason: "wrong_audience",
			token: shaped(t, iss, jwt, map[string]any{
				"at_hash": "fPlsvVszI29LU2UhDyJ9vg", "aud": []string{"claude-desktop"}, "auth_time": iat, "exp": exp,
				"iat": iat, "iss": iss.URL(), "jti": "8c1d2e3f-4a5b-4c6d-9e7f-0a1b2c3d4e5f", "nonce": "n-0S6_WzA2Mj",
				"rat": iat, "sid": "0e3d4c5b-6a79-4887-a6b5-c4d3e2f1a0b9", "sub": "6f1c9f8e-3b2a-4d5c-8e7f-1a2b3c4d5e6f",
			})},
		{name: "scope_claim string: scope instead of scp", route: docsPath, status: http.StatusForbidden, reason: "insufficient_scope",
			token: shaped(t, iss, jwt, hydra([]string{docs}, nil, func(c map[string]any) {
				delete(c, "scp")
				c["scope"] = "openid docs:read"
			}))},
		{name: "issuer with a trailing slash the configuration lacks", route: docsPath, status: http.StatusUnauthorized, reason: "unknown_issuer",
			token: shaped(t, iss, jwt, hydra([]string{docs}, []string{"docs:read"}, func(c map[string]any) { c["iss"] = iss.URL() + "/" }))},
		{name: "default opaque token", route: docsPath, status: http.StatusUnauthorized, reason: "malformed",
			token: "ory_at_Fw3oq2dA6pPzJvN0cH1xTt9uK8yL5mB4rE7sW2gZ0aQ.kU1nV9cX3bR7yT5wP2qL8mD4fH6jG0sA1eZ3oI9uY5t"},
	})
}
