package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a.b.c", "Basic x", "Bearer", "Bearer a b", "Bearer abc==", "Bearer =", "BearerX y", "Bearer \x00"} {
		f.Add(s, "access_token=1")
	}
	f.Add("", "a=1&b=%zz;access%5Ftoken")
	f.Fuzz(func(t *testing.T, header, query string) {
		_ = hasQueryToken(query)
		tok, e := parseBearer(header, 1<<20)
		if e != nil {
			if tok != "" {
				t.Fatal("token returned with an error")
			}
			switch e.Err {
			case nil, ErrNoToken, errEmptyBearer, errBearerSyntax: // fixed texts, no input
			default:
				t.Fatalf("unexpected cause %v", e.Err)
			}
			return
		}
		if !isB64Token(tok) || !strings.Contains(header, tok) || !strings.HasPrefix(strings.ToLower(strings.TrimLeft(header, " \t")), "bearer ") {
			t.Fatalf("parseBearer(%q) = %q", header, tok)
		}
	})
}

// FuzzParse feeds arbitrary JOSE header and claims JSON through the JWS
// parser and the claim checks. Beyond not panicking: an accepted token
// reads the same iss, sub, aud and exp as encoding/json would (no parser
// differential), and errors never quote the token.
func FuzzParse(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range [][2]string{
		{`{"alg":"RS256","typ":"at+jwt","kid":"k"}`, `{"iss":"https://as","sub":"a","aud":"https://rs","exp":1900000000}`},
		{`{"alg":"ES256","crit":["b64"]}`, `{"iss":"x","aud":["a","b"],"exp":1.5e9,"nbf":0,"iat":1}`},
		{`{"alg":"none"}`, `{"iss":"x","ISS":"y"}`},
		{`{"alg":"RS256","alg":"HS256"}`, `{"Aud":"x","scope":"a b","act":{"sub":"g","act":{"sub":"h"}}}`},
		{`{"alg":"EdDSA","typ":"application/AT+JWT"}`, `{"iss":"\u0069","sub":"\ud800","scp":["a"],"exp":"1"}`},
		{`{"alg":"RS256"}`, `{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, hdr, payload []byte) {
		tok := enc(hdr) + "." + enc(payload) + ".c2lnbmF0dXJl"
		hdrJSON, ok := splitJWS(tok)
		if !ok {
			return
		}
		j, e := parseJWS(tok, hdrJSON, supportedAlgs)
		if e != nil {
			for _, seg := range strings.Split(tok, ".") {
				if len(seg) >= 16 && strings.Contains(e.Error(), seg) {
					t.Fatalf("error %q quotes the token", e.Error())
				}
			}
			return
		}
		_ = typeAccepted(&j.header, true)
		_ = checkTimesAndAudience(&j.claims, audienceCheck{resource: "https://rs"}, j.claims.iat, 60e9)
		var std struct {
			Iss string          `json:"iss"`
			Sub string          `json:"sub"`
			Aud json.RawMessage `json:"aud"`
			Exp json.RawMessage `json:"exp"`
		}
		if err := json.Unmarshal(payload, &std); err != nil {
			return // e.g. iss of another JSON type: we refused those above
		}
		if std.Iss != j.claims.iss || std.Sub != j.claims.sub {
			t.Fatalf("parser differential: iss %q/%q sub %q/%q", std.Iss, j.claims.iss, std.Sub, j.claims.sub)
		}
		if aud, ok := jsonStrings(std.Aud); len(std.Aud) > 0 && (!ok || strings.Join(aud, "\x00") != strings.Join(j.claims.aud, "\x00")) {
			t.Fatalf("parser differential on aud")
		}
		if (len(std.Exp) > 0 && string(std.Exp) != "null") != j.claims.hasExp && string(std.Exp) != "null" {
			t.Fatalf("parser differential on exp")
		}
	})
}

// FuzzParseObject checks the strict object reader against encoding/json:
// whatever it accepts is valid JSON with the same members and values.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"A":2}`, `{"a":{"b":1,"b":2}}`, `{"\u0061":1,"a":2}`, ` {"a" : [1, {"x":"y"}] , "b":"\\"} `, `[1]`, `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parseObject(data)
		if err != nil {
			if !errors.Is(err, errJSON) && !errors.Is(err, errNotObject) && !errors.Is(err, errDuplicate) && !errors.Is(err, errTooDeep) && !errors.Is(err, errTooMany) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		if len(m) != len(o) {
			t.Fatalf("%d members, encoding/json sees %d", len(o), len(m))
		}
		for _, mb := range o {
			if !bytes.Equal(m[mb.name], mb.value) {
				t.Fatalf("member %q: %q vs %q", mb.name, mb.value, m[mb.name])
			}
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","use":"sig","key_ops":["verify"]}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"PS256"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, _, err := parseJWKS(data, nil)
		if err == nil && ks.n == 0 {
			t.Fatal("empty key set accepted")
		}
	})
}

func FuzzMetadataURL(f *testing.F) {
	for _, s := range []string{"https://gw/mcp", "https://gw", "http://[::1]:80/a?b#c", "https://u@h/", "https://gw/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, resource string) {
		u, err := MetadataURL(resource)
		if err != nil {
			return
		}
		if !strings.Contains(u, WellKnownPath) || strings.Contains(u, "#") {
			t.Fatalf("MetadataURL(%q) = %q", resource, u)
		}
	})
}
