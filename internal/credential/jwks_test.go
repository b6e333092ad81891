package credential

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type keysResponse struct {
	code   int
	header http.Header
	body   string
}

func keysServe(h http.Handler, method string) keysResponse {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, JWKSPath, nil))
	return keysResponse{rec.Code, rec.Result().Header, rec.Body.String()}
}

func TestJWKSHandler(t *testing.T) {
	ks, err := NewKeySet(KeysConfig{}, KeyDeps{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ks.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method   string
		wantCode int
		wantBody string
	}{
		{http.MethodGet, 200, string(doc)},
		{http.MethodHead, 200, ""},
		{http.MethodPost, 405, "method not allowed\n"},
		{http.MethodPut, 405, "method not allowed\n"},
		{http.MethodDelete, 405, "method not allowed\n"},
		{http.MethodOptions, 405, "method not allowed\n"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+JWKSPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode || body.String() != tc.wantBody {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body.String(), tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 405 {
				if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
					t.Fatalf("Allow %q", got)
				}
				return
			}
			for h, want := range map[string]string{
				"Content-Type":   "application/json",
				"Cache-Control":  "public, max-age=300",
				"Content-Length": "",
			} {
				if got := resp.Header.Get(h); want != "" && got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if resp.ContentLength != int64(len(doc)) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(doc))
			}
		})
	}
}

// TestJWKSHasNoPrivateMember checks, for every algorithm and key source,
// that the JWKS holds the public key only: no "d" member, and neither the
// private scalar nor the Ed25519 seed in any encoding.
func TestJWKSHasNoPrivateMember(t *testing.T) {
	dir := t.TempDir()
	p256 := keysNewP256(t)
	ed := keysNewEd25519(t)
	fromFiles := func(alg string, key any) *KeySet {
		p := keysWrite(t, dir, alg+".pem", keysPEM(t, "PRIVATE KEY", key))
		ks, err := NewKeySet(KeysConfig{Algorithm: alg, Files: []KeyFile{{File: p}}}, KeyDeps{})
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	cases := map[string]*KeySet{
		"ES256 file": fromFiles(AlgES256, p256),
		"EdDSA file": fromFiles(AlgEdDSA, ed),
		"ES256 gen":  must(NewKeySet(KeysConfig{Algorithm: AlgES256}, KeyDeps{})),
		"EdDSA gen":  must(NewKeySet(KeysConfig{Algorithm: AlgEdDSA}, KeyDeps{})),
	}
	for name, ks := range cases {
		t.Run(name, func(t *testing.T) {
			doc, err := ks.JWKS()
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string][]map[string]json.RawMessage
			if err := json.Unmarshal(doc, &raw); err != nil {
				t.Fatal(err)
			}
			if len(raw) != 1 || len(raw["keys"]) == 0 {
				t.Fatalf("JWKS shape: %s", doc)
			}
			for _, k := range raw["keys"] {
				for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
					if _, ok := k[priv]; ok {
						t.Fatalf("JWK has the private member %q", priv)
					}
				}
			}
			keysParseJWKS(t, doc, ks.Algorithm())
			// The private material itself, in any base64 flavour.
			var secrets [][]byte
			for _, k := range ks.publishedForTest(t) {
				switch s := k.signer.(type) {
				case *ecdsa.PrivateKey:
					b, _ := s.Bytes()
					secrets = append(secrets, b)
				case ed25519.PrivateKey:
					secrets = append(secrets, s.Seed())
				}
			}
			for _, s := range secrets {
				for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding, base64.URLEncoding} {
					if strings.Contains(string(doc), enc.EncodeToString(s)[:20]) {
						t.Fatal("JWKS holds the private key")
					}
				}
			}
		})
	}
}

func (ks *KeySet) publishedForTest(t *testing.T) []*signingKey {
	t.Helper()
	keys, err := ks.published()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
