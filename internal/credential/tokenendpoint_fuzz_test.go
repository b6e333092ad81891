package credential

import (
	"errors"
	"regexp"
	"testing"
	"time"
)

// xcMessagePattern is every Message the parser may produce: fixed text
// plus, for refusals, a sanitized error code.
var xcMessagePattern = regexp.MustCompile(`^the authorization server (sent an invalid answer|is unavailable \(HTTP -?[0-9]+\)|refused the token exchange \([a-z_]{1,64}\))$`)

// xcErrorPattern is every error text the parser may produce.
var xcErrorPattern = regexp.MustCompile(`^credential: the authorization server [^:]+: status -?[0-9]+(: [A-Za-z0-9_ ]+|, error [a-z_]{1,64})?$`)

// FuzzParseTokenEndpointResponse: the parser never panics, accepts only
// usable tokens, and never lets the body into a Message or an error.
func FuzzParseTokenEndpointResponse(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"access_token":"abc.def","token_type":"Bearer","expires_in":3600,"scope":"a b","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`},
		{200, `{"access_token":"abc","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}`},
		{200, `{"access_token":"abc","token_type":"bearer","expires_in":"60"}`},
		{200, `{"access_token":"abc","token_type":"Bearer","expires_in":1e400}`},
		{200, `{"access_token":"a\u0000b","token_type":"Bearer"}`},
		{200, `{"access_token":"abc","token_type":"Bearer","scope":"a  \"b"}`},
		{200, `[1,2]`},
		{400, `{"error":"invalid_target","error_description":"SECRET-ECHO"}`},
		{401, `{"error":"Inv\u00e4lid-Client!"}`},
		{403, `{"error":""}`},
		{500, `oops`},
		{429, ``},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := parseTokenEndpointResponse(status, body, "token exchange", true)
		if err == nil {
			if status != 200 || r.AccessToken == "" || r.Lifetime < time.Second || r.Lifetime > maxTokenLifetime {
				t.Fatalf("accepted %d %q as %+v", status, body, r)
			}
			for i := 0; i < len(r.AccessToken); i++ {
				if c := r.AccessToken[i]; c < 0x21 || c > 0x7e {
					t.Fatalf("accepted a token with byte %#x", c)
				}
			}
			for _, s := range r.Scopes {
				if !validScope(s) {
					t.Fatalf("accepted scope %q", s)
				}
			}
			if r.IssuedTokenType != "" && r.IssuedTokenType != tokenTypeAccessToken {
				t.Fatalf("accepted issued_token_type %q", r.IssuedTokenType)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || (e.Kind != Denied && e.Kind != Unavailable) {
			t.Fatalf("error %v is not a classified *Error", err)
		}
		if e.Kind == Denied && status != 400 && status != 401 && status != 403 {
			t.Fatalf("status %d classified as a refusal", status)
		}
		if !xcMessagePattern.MatchString(e.Message) {
			t.Fatalf("message %q", e.Message)
		}
		// Nothing of the body beyond the sanitized code: the cause is
		// fixed text too.
		if !xcErrorPattern.MatchString(err.Error()) {
			t.Fatalf("error %q", err)
		}
	})
}
