package credential

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const mintTestIssuer = "https://gate.example.com"

func mintNew(t testing.TB, cfg MintConfig, ks *KeySet) *Minter {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = mintTestIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = "https://tools.example.com/mcp"
	}
	m, err := NewMinter(cfg, ks)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mintGenKeys(t testing.TB, alg string, clk *keysClock) *KeySet {
	t.Helper()
	ks, err := NewKeySet(KeysConfig{Algorithm: alg, RotateEvery: 24 * time.Hour, Overlap: 2 * time.Hour}, KeyDeps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// mintCaller builds a caller whose raw token is composed at run time.
func mintCaller(clk *keysClock) Caller {
	return Caller{
		Token:    strings.Join([]string{"eyJ" + "hbGciOiJFUzI1NiJ9", "eyJ" + "zdWIiOiJ1In0", "c2ln"}, "."),
		Issuer:   "https://idp.example.com",
		Subject:  "user-42",
		ClientID: "cli-7",
		Scopes:   []string{"files:read", "files:write", "openid"},
		Expiry:   clk.Now().Add(time.Hour),
	}
}

func TestMintClaims(t *testing.T) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			clk := newKeysClock()
			ks := mintGenKeys(t, alg, clk)
			m := mintNew(t, MintConfig{Scopes: []string{"files:write", "files:read", "admin", "files:read"}}, ks)
			c := mintCaller(clk)
			c.Actor = []string{"agent-a", "agent-b"}
			cred, err := m.Credential(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			hdr, claims := keysVerify(t, ks, cred.Secret, clk.Now())
			if diff := cmp.Diff(map[string]any{"alg": alg, "typ": "at+jwt", "kid": keysSignedKid(t, ks)}, hdr); diff != "" {
				t.Fatalf("header (-want +got):\n%s", diff)
			}
			now := clk.Now().Unix()
			want := map[string]any{
				"iss":       mintTestIssuer,
				"sub":       "user-42",
				"aud":       "https://tools.example.com/mcp",
				"client_id": "cli-7",
				"act": map[string]any{"sub": mintTestIssuer, "act": map[string]any{
					"sub": "agent-a", "act": map[string]any{"sub": "agent-b"}}},
				"scope": "files:write files:read", // configuration order, held only
				"iat":   float64(now),
				"exp":   float64(now + 300),
				"jti":   cred.ID,
			}
			if diff := cmp.Diff(want, map[string]any(claims)); diff != "" {
				t.Fatalf("claims (-want +got):\n%s", diff)
			}
			if cred.Header != "Authorization" || cred.Value != "Bearer "+cred.Secret ||
				!cred.Expiry.Equal(time.Unix(now+300, 0)) {
				t.Fatalf("credential %+v", cred)
			}
			if jti, err := base64.RawURLEncoding.DecodeString(cred.ID); err != nil || len(jti) != 16 {
				t.Fatalf("jti %q is not 128 bits base64url", cred.ID)
			}
			if strings.Contains(cred.Secret, c.Token) {
				t.Fatal("the client's token reached the upstream credential")
			}
		})
	}
}

func TestMintCallerVariants(t *testing.T) {
	clk := newKeysClock()
	ks := mintGenKeys(t, AlgES256, clk)
	now := clk.Now()
	for _, tc := range []struct {
		name    string
		cfg     MintConfig
		caller  func(c *Caller)
		check   func(t *testing.T, claims map[string]any, cred Credential)
		wantErr string
	}{
		{"no actor chain: mcpgate is the only actor", MintConfig{}, func(c *Caller) {},
			func(t *testing.T, cl map[string]any, _ Credential) {
				if diff := cmp.Diff(map[string]any{"sub": mintTestIssuer}, cl["act"]); diff != "" {
					t.Fatal(diff)
				}
			}, ""},
		{"no common scope: claim omitted", MintConfig{Scopes: []string{"admin"}}, func(c *Caller) {},
			func(t *testing.T, cl map[string]any, _ Credential) {
				if _, ok := cl["scope"]; ok {
					t.Fatalf("scope %v", cl["scope"])
				}
			}, ""},
		{"no configured scope: claim omitted", MintConfig{}, func(c *Caller) {},
			func(t *testing.T, cl map[string]any, _ Credential) {
				if _, ok := cl["scope"]; ok {
					t.Fatalf("scope %v", cl["scope"])
				}
			}, ""},
		{"caller without scopes", MintConfig{Scopes: []string{"files:read"}}, func(c *Caller) { c.Scopes = nil },
			func(t *testing.T, cl map[string]any, _ Credential) {
				if _, ok := cl["scope"]; ok {
					t.Fatalf("scope %v", cl["scope"])
				}
			}, ""},
		{"lifetime capped by the caller's expiry", MintConfig{Lifetime: 10 * time.Minute},
			func(c *Caller) { c.Expiry = now.Add(150*time.Second + 700*time.Millisecond) },
			func(t *testing.T, cl map[string]any, cred Credential) {
				if cl["exp"] != float64(now.Unix()+150) || !cred.Expiry.Equal(time.Unix(now.Unix()+150, 0)) {
					t.Fatalf("exp %v / %v, want the caller's expiry rounded down", cl["exp"], cred.Expiry)
				}
			}, ""},
		{"unknown caller expiry: full lifetime", MintConfig{Lifetime: time.Minute}, func(c *Caller) { c.Expiry = time.Time{} },
			func(t *testing.T, cl map[string]any, _ Credential) {
				if cl["exp"] != float64(now.Unix()+60) {
					t.Fatalf("exp %v", cl["exp"])
				}
			}, ""},
		{"exactly one second left", MintConfig{}, func(c *Caller) { c.Expiry = now.Add(time.Second) },
			func(t *testing.T, cl map[string]any, _ Credential) {
				if cl["exp"] != float64(now.Unix()+1) {
					t.Fatalf("exp %v", cl["exp"])
				}
			}, ""},
		{"no subject: the client is the subject", MintConfig{}, func(c *Caller) { c.Subject = "" },
			func(t *testing.T, cl map[string]any, _ Credential) {
				if cl["sub"] != "cli-7" || cl["client_id"] != "cli-7" {
					t.Fatalf("sub %v client_id %v", cl["sub"], cl["client_id"])
				}
			}, ""},
		{"no client id: claim omitted", MintConfig{}, func(c *Caller) { c.ClientID = "" },
			func(t *testing.T, cl map[string]any, _ Credential) {
				if _, ok := cl["client_id"]; ok || cl["sub"] != "user-42" {
					t.Fatalf("claims %v", cl)
				}
			}, ""},
		{"expires in under a second", MintConfig{}, func(c *Caller) { c.Expiry = now.Add(999 * time.Millisecond) }, nil,
			"the client's token expires too soon to mint an upstream credential"},
		{"already expired", MintConfig{}, func(c *Caller) { c.Expiry = now.Add(-time.Minute) }, nil,
			"the client's token expires too soon to mint an upstream credential"},
		{"neither subject nor client", MintConfig{}, func(c *Caller) { c.Subject, c.ClientID = "", "" }, nil,
			"the client's token names neither a subject nor a client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mintNew(t, tc.cfg, ks)
			c := mintCaller(clk)
			tc.caller(&c)
			cred, err := m.Credential(context.Background(), c)
			if tc.wantErr != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Kind != Denied || ce.Message != tc.wantErr || !IsDenied(err) {
					t.Fatalf("err = %#v, want Denied %q", err, tc.wantErr)
				}
				if cred != (Credential{}) {
					t.Fatal("a credential came with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, claims := keysVerify(t, ks, cred.Secret, clk.Now())
			tc.check(t, claims, cred)
		})
	}
}

func TestMintCanceledContext(t *testing.T) {
	clk := newKeysClock()
	m := mintNew(t, MintConfig{}, mintGenKeys(t, AlgES256, clk))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Credential(ctx, mintCaller(clk))
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != Unavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestMintDistinctJTI(t *testing.T) {
	clk := newKeysClock()
	m := mintNew(t, MintConfig{}, mintGenKeys(t, AlgEdDSA, clk))
	seen := map[string]bool{}
	for range 2000 {
		cred, err := m.Credential(context.Background(), mintCaller(clk))
		if err != nil {
			t.Fatal(err)
		}
		if seen[cred.ID] {
			t.Fatalf("jti %q repeated", cred.ID)
		}
		seen[cred.ID] = true
	}
}

func TestMintGeneratedKeyRotation(t *testing.T) {
	clk := newKeysClock()
	ks := mintGenKeys(t, AlgES256, clk) // rotate 24h, overlap 2h
	m := mintNew(t, MintConfig{Lifetime: time.Hour, ClockSkew: 5 * time.Minute}, ks)
	mint := func() string {
		t.Helper()
		cred, err := m.Credential(context.Background(), Caller{Subject: "u", ClientID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		return cred.Secret
	}
	old := mint()
	oldKid := keysKid(t, old)

	clk.Advance(24*time.Hour - 2*time.Hour)
	if kids := keysPublishedKids(t, ks); len(kids) != 2 || kids[0] != oldKid {
		t.Fatalf("next key not published before it signs: %q", kids)
	}
	nextKid := keysPublishedKids(t, ks)[1]
	if keysKid(t, mint()) != oldKid {
		t.Fatal("the next key signed before its time")
	}

	clk.Advance(2*time.Hour - time.Minute)
	lastOld := mint() // signed by the old key one minute before rotation
	clk.Advance(time.Minute)
	tok := mint()
	if keysKid(t, tok) != nextKid {
		t.Fatalf("after RotateEvery, kid %q, want %q", keysKid(t, tok), nextKid)
	}
	keysVerify(t, ks, tok, clk.Now())
	// A token signed by the old key still verifies during the overlap.
	clk.Advance(58 * time.Minute)
	keysVerify(t, ks, lastOld, clk.Now())
	clk.Advance(2*time.Hour - 58*time.Minute)
	if kids := keysPublishedKids(t, ks); slices.Contains(kids, oldKid) {
		t.Fatalf("old key still published after the overlap: %q", kids)
	}
}

func TestMintFileKeyRotation(t *testing.T) {
	dir := t.TempDir()
	clk := newKeysClock()
	first, second := keysNewEd25519(t), keysNewEd25519(t)
	p := keysWrite(t, dir, "signing.pem", keysPEM(t, "PRIVATE KEY", first))
	ks, err := NewKeySet(KeysConfig{Algorithm: AlgEdDSA, Files: []KeyFile{{File: p}}}, KeyDeps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := mintNew(t, MintConfig{}, ks)
	c := mintCaller(clk)
	cred, err := m.Credential(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if keysKid(t, cred.Secret) != keysThumbprint(t, first.Public()) {
		t.Fatal("not signed by the file's key")
	}
	keysWrite(t, dir, "signing.pem", keysPEM(t, "PRIVATE KEY", second))
	clk.Advance(time.Second)
	cred, err = m.Credential(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if keysKid(t, cred.Secret) != keysThumbprint(t, second.Public()) {
		t.Fatal("the rewritten key file was not used without a restart")
	}
	keysVerify(t, ks, cred.Secret, clk.Now())

	// A world-readable key file: Unavailable, nothing secret in the error.
	secretPEM := keysPEM(t, "PRIVATE KEY", second)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	_, err = m.Credential(context.Background(), c)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != Unavailable || ce.Message != "mcpgate's signing key is unavailable" {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), keysPEMBody(secretPEM)) || strings.Contains(err.Error(), c.Token) {
		t.Fatal("error leaks a secret")
	}
	if !strings.Contains(err.Error(), "accessible by other users") {
		t.Fatalf("error %q does not say why", err)
	}
}

func TestMintConfigValidation(t *testing.T) {
	clk := newKeysClock()
	gen := mintGenKeys(t, AlgES256, clk) // overlap 2h
	for _, tc := range []struct {
		name string
		cfg  MintConfig
		keys *KeySet
		want []string // "" entries: accepted
	}{
		{"https issuer", MintConfig{Issuer: "https://gate.example.com/tenant"}, gen, nil},
		{"localhost http", MintConfig{Issuer: "http://localhost:8080"}, gen, nil},
		{"loopback v4", MintConfig{Issuer: "http://127.0.0.9:8080"}, gen, nil},
		{"loopback v6", MintConfig{Issuer: "http://[::1]:8080"}, gen, nil},
		{"http public host", MintConfig{Issuer: "http://gate.example.com"}, gen, []string{"must be an absolute https URL"}},
		{"relative", MintConfig{Issuer: "/gate"}, gen, []string{"must be an absolute https URL"}},
		{"query", MintConfig{Issuer: "https://gate.example.com/?a=b"}, gen, []string{"without query or fragment"}},
		{"empty query", MintConfig{Issuer: "https://gate.example.com/?"}, gen, []string{"without query or fragment"}},
		{"fragment", MintConfig{Issuer: "https://gate.example.com/#x"}, gen, []string{"without query or fragment"}},
		{"userinfo", MintConfig{Issuer: "https://u:p@gate.example.com"}, gen, []string{"must be an absolute https URL"}},
		{"other scheme", MintConfig{Issuer: "ftp://gate.example.com"}, gen, []string{"must be an absolute https URL"}},
		{"audience with space", MintConfig{Audience: " x"}, gen, []string{"audience"}},
		{"audience with control", MintConfig{Audience: "x\ny"}, gen, []string{"audience"}},
		{"bad scopes", MintConfig{Scopes: []string{"ok", "has space", "", `q"uote`}}, gen,
			[]string{`"has space" is not a valid scope`, `"" is not a valid scope`, `"q\"uote" is not a valid scope`}},
		{"lifetime too long", MintConfig{Lifetime: 2 * time.Hour}, gen, []string{"lifetime 2h0m0s must be between 1s and 1h0m0s"}},
		{"lifetime too short", MintConfig{Lifetime: time.Millisecond}, gen, []string{"must be between 1s"}},
		{"skew", MintConfig{ClockSkew: 10 * time.Minute}, gen, []string{"clock skew 10m0s must be between 0 and 5m0s"}},
		{"overlap too short for lifetime", MintConfig{Lifetime: time.Hour, ClockSkew: 5 * time.Minute},
			must(NewKeySet(KeysConfig{Overlap: time.Hour}, KeyDeps{})), []string{"exceeds the signing key overlap (1h0m0s)"}},
		{"no keys", MintConfig{}, nil, []string{"needs a key set"}},
		{"several problems at once", MintConfig{Issuer: "x", Lifetime: -1}, nil,
			[]string{"issuer", "lifetime", "key set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Issuer == "" {
				cfg.Issuer = mintTestIssuer
			}
			if cfg.Audience == "" {
				cfg.Audience = "upstream"
			}
			m, err := NewMinter(cfg, tc.keys)
			if len(tc.want) == 0 {
				if err != nil || m == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMintConcurrentAcrossRotation(t *testing.T) {
	clk := newKeysClock()
	ks, err := NewKeySet(KeysConfig{RotateEvery: time.Hour, Overlap: 10 * time.Minute}, KeyDeps{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := mintNew(t, MintConfig{Lifetime: time.Minute}, ks)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var toks []string
	for range 8 {
		wg.Go(func() {
			for range 100 {
				cred, err := m.Credential(context.Background(), Caller{Subject: "u"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				toks = append(toks, cred.Secret)
				mu.Unlock()
			}
		})
	}
	for range 50 {
		clk.Advance(3 * time.Minute)
	}
	wg.Wait()
	if len(toks) != 800 {
		t.Fatalf("%d tokens", len(toks))
	}
	last, err := m.Credential(context.Background(), Caller{Subject: "u"})
	if err != nil {
		t.Fatal(err)
	}
	keysVerify(t, ks, last.Secret, clk.Now())
}

// FuzzMintIssuer: an accepted issuer is an absolute https URL, or http on
// a loopback host, without user info, query or fragment.
func FuzzMintIssuer(f *testing.F) {
	for _, s := range []string{mintTestIssuer, "http://localhost", "http://127.0.0.1:1", "http://[::1]", "https://a/?", "https://a#",
		"http://evil.example", "https://u@a", "HTTPS://A", "https://a/b c", "https://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, iss string) {
		if checkMintIssuer(iss) != nil {
			return
		}
		u, err := url.Parse(iss)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(iss, "?# \t\n") {
			t.Fatalf("accepted %q", iss)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && mintLoopbackHost(u.Hostname())) {
			t.Fatalf("accepted %q (scheme %q host %q)", iss, u.Scheme, u.Hostname())
		}
	})
}

func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			ks, err := NewKeySet(KeysConfig{Algorithm: alg}, KeyDeps{})
			if err != nil {
				b.Fatal(err)
			}
			m := mintNew(b, MintConfig{Scopes: []string{"files:read", "files:write"}}, ks)
			c := Caller{Subject: "user-42", ClientID: "cli-7", Scopes: []string{"files:read", "openid"},
				Expiry: time.Now().Add(time.Hour), Actor: []string{"agent-a"}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Credential(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
