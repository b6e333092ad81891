package devauth

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

func fuzzServer(f *testing.F) *Server {
	s, err := New(Config{
		Issuer:    "http://127.0.0.1:9400",
		Resources: []string{docsRes, mailRes + "/"},
		Scopes:    []string{"docs:read"},
	})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func FuzzRegistration(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{
		`{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"redirect_uris":["https://app.example.test/cb"],"scope":"docs:read openid"}`,
		`{"grant_types":["client_credentials"],"response_types":[]}`,
		`{"redirect_uris":["http://[::1]/cb"],"client_name":"x","REDIRECT_URIS":["http://evil.example.test/"]}`,
		`{"redirect_uris":["http://127.0.0.1/cb"],"redirect_uris":["http://evil.example.test/"]}`,
		`null`, `[]`, ` {} `, `{"redirect_uris":null}`, "{\"client_name\":\"\\u0000\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reg, err := parseRegistration(body)
		if err != nil {
			var re *registrationError
			if !errors.As(err, &re) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if err := s.validateRegistration(reg); err != nil {
			var re *registrationError
			if !errors.As(err, &re) || (re.code != errInvalidClientMetadata && re.code != errInvalidRedirectURI) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, ru := range reg.RedirectURIs {
			if err := validateRedirectURI(ru); err != nil {
				t.Fatalf("accepted redirect uri %q: %v", ru, err)
			}
		}
		for _, g := range reg.GrantTypes {
			if g != GrantAuthorizationCode && g != GrantRefreshToken && g != GrantClientCredentials {
				t.Fatalf("accepted grant %q", g)
			}
		}
		if slices.Contains(reg.GrantTypes, GrantAuthorizationCode) && len(reg.RedirectURIs) == 0 {
			t.Fatal("code grant without redirect uris")
		}
		if !isPrintable(reg.ClientName) {
			t.Fatalf("accepted client name %q", reg.ClientName)
		}
	})
}

func FuzzRedirectURI(f *testing.F) {
	for _, seed := range []string{"https://app.example.test/cb", "http://127.0.0.1:9/cb", "http://[::1]/", "http://localhost./cb",
		"http://127.0.0.1.nip.io/cb", "http://127.0.0.1@evil.example.test/", "http://evil.example.test\\@127.0.0.1/",
		"HTTP://LOCALHOST/cb", "https:/app", "https://app.example.test/cb#", "http://[::ffff:127.0.0.1]/cb", "http://0x7f.1/"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if validateRedirectURI(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || strings.Contains(raw, "#") || u.User != nil || u.Host == "" {
			t.Fatalf("accepted %q", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				t.Fatalf("accepted http to %q in %q", h, raw)
			}
		default:
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
	})
}

func FuzzResolveResource(f *testing.F) {
	s := fuzzServer(f)
	for _, seed := range []string{docsRes, docsRes + "/", mailRes, mailRes + "/", docsRes + "#", docsRes + "?", "/x", "", "urn:a"} {
		f.Add(seed, "")
		f.Add(seed, docsRes)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		vals := []string{a}
		if b != "" {
			vals = append(vals, b)
		}
		r, err := s.resolveResource(vals)
		if err != nil {
			var oe *oidc.Error
			if !errors.As(err, &oe) || oe.ErrorType != oidc.InvalidTarget {
				t.Fatalf("error %v is not invalid_target", err)
			}
			return
		}
		if !slices.Contains(s.cfg.Resources, r) || len(vals) != 1 || strings.TrimSuffix(a, "/") != strings.TrimSuffix(r, "/") {
			t.Fatalf("%q resolved to %q", vals, r)
		}
	})
}

func FuzzVerifyAccessToken(f *testing.F) {
	s := fuzzServer(f)
	tok, err := s.signAccessToken(accessToken{id: accessTokenPrefix + "x", subject: "s", audience: docsRes,
		clientID: "c", expiry: s.now().Add(DefaultAccessTokenTTL), issuedAt: s.now()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(strings.Replace(tok, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.verifyAccessToken(in)
		if err != nil {
			return
		}
		if c.Issuer != s.issuer || !strings.HasPrefix(c.JWTID, accessTokenPrefix) {
			t.Fatalf("verified foreign claims %+v", c)
		}
	})
}

func FuzzHiddenFields(f *testing.F) {
	f.Add([]byte(`<input type="hidden" name="id" value="ar_X"><input type="hidden" name="csrf" value="a&amp;b">`))
	f.Add([]byte(`<input type="hidden" name="id" value="">`))
	f.Fuzz(func(t *testing.T, page []byte) {
		form, err := hiddenFields(page)
		if err == nil && (form.Get("id") == "" || form.Get("csrf") == "") {
			t.Fatal("fields accepted empty")
		}
	})
}
