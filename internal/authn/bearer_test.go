package authn

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	for _, tt := range []struct {
		in, tok, reason string
	}{
		{"Bearer abc.DEF-_~+/=", "abc.DEF-_~+/=", ""},
		{"bearer abc", "abc", ""},
		{"BEARER  abc", "abc", ""},
		{"Bearer abc==", "abc==", ""},
		{"", "", ReasonMissing},
		{"Basic dXNlcjpwYXNz", "", ReasonUnsupportedScheme},
		{"DPoP abc", "", ReasonUnsupportedScheme},
		{"Bearerabc", "", ReasonUnsupportedScheme},
		{"Bear", "", ReasonUnsupportedScheme},
		{"Bearer", "", ReasonMalformedHeader},
		{"Bearer ", "", ReasonMalformedHeader},
		{"Bearer\tabc", "", ReasonMalformedHeader},
		{"Bearer,abc", "", ReasonMalformedHeader},
		{"Bearer a b", "", ReasonMalformedHeader},
		{"Bearer =abc", "", ReasonMalformedHeader},
		{"Bearer ab=c", "", ReasonMalformedHeader},
		{"Bearer a\"b", "", ReasonMalformedHeader},
		{"Bearer é", "", ReasonMalformedHeader},
		{`Bearer realm="x"`, "", ReasonMalformedHeader},
		{"Bearer " + strings.Repeat("a", 101), "", ReasonTooLarge},
		{"Bearer " + strings.Repeat("\"", 101), "", ReasonTooLarge}, // size first, syntax second
	} {
		tok, e := parseBearer(tt.in, 100)
		switch {
		case tt.reason == "" && (e != nil || tok != tt.tok):
			t.Errorf("parseBearer(%q) = %q, %v; want %q", tt.in, tok, e, tt.tok)
		case tt.reason != "" && (e == nil || e.Reason != tt.reason):
			t.Errorf("parseBearer(%q) = %q, %v; want reason %s", tt.in, tok, e, tt.reason)
		}
	}
	if _, e := bearerToken(http.Header{"Authorization": {"Bearer a", "Bearer a"}}, 100); e == nil || e.Reason != ReasonMultipleHeaders {
		t.Errorf("two headers: %v", e)
	}
}

func TestHasQueryToken(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want bool
	}{
		{"", false},
		{"a=1", false},
		{"access_token=x", true},
		{"a=1&access_token=", true},
		{"access_token", true},
		{"access%5Ftoken=x", true},
		{"access%5ftoken=x", true},
		{"a=1;access_token=x", true},
		{"my_access_token=x", false},
		{"x=access_token", false},
		{"%zz=1", false},
	} {
		if got := hasQueryToken(tt.q); got != tt.want {
			t.Errorf("hasQueryToken(%q) = %v", tt.q, got)
		}
	}
}
