package credential

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// staticToken returns a random API-key-looking value built at run time.
func staticToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "tk" + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func staticWrite(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func staticID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

// TestStaticTooShort: a value too short for exact-match redaction is
// refused (an echo of it could not be removed from answers).
func TestStaticTooShort(t *testing.T) {
	for _, v := range []string{"abc", "Bearer 1234567", "Bearer"} {
		p := filepath.Join(t.TempDir(), "value")
		staticWrite(t, p, v, 0o600)
		s, err := NewStatic(StaticConfig{ValueFile: p})
		if err == nil {
			_, err = s.Credential(context.Background(), Caller{})
		}
		if err == nil || strings.Contains(err.Error(), v) && len(v) > 6 {
			t.Errorf("%q: err %v, want a refusal that does not repeat the value", v, err)
		}
	}
}

func TestStaticValues(t *testing.T) {
	tok := staticToken(t)
	for _, tc := range []struct {
		name       string
		header     string
		content    string
		wantHeader string
		wantValue  string
		wantSecret string
	}{
		{"bearer", "", "Bearer " + tok + "\n", "Authorization", "Bearer " + tok, tok},
		{"bearer lower case, extra spaces", "authorization", "bearer   " + tok, "Authorization", "bearer   " + tok, tok},
		{"basic", "", "Basic " + tok, "Authorization", "Basic " + tok, tok},
		{"api key header", "x-api-key", tok, "X-Api-Key", tok, tok},
		{"other scheme kept whole", "", "Token " + tok, "Authorization", "Token " + tok, "Token " + tok},
		{"bare scheme word kept whole", "", "Bearer-ish", "Authorization", "Bearer-ish", "Bearer-ish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "value")
			staticWrite(t, p, tc.content, 0o600)
			s, err := NewStatic(StaticConfig{Header: tc.header, ValueFile: p})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := s.Credential(context.Background(), Caller{Token: "client-token-" + tok[:6]})
			if err != nil {
				t.Fatal(err)
			}
			want := Credential{Header: tc.wantHeader, Value: tc.wantValue, Secret: tc.wantSecret, ID: staticID(tc.wantSecret)}
			if cred != want {
				t.Fatalf("credential %+v, want %+v", cred, want)
			}
		})
	}
}

func TestStaticConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	tok := staticToken(t)
	staticWrite(t, good, tok, 0o600)
	multiline := filepath.Join(dir, "multi")
	staticWrite(t, multiline, tok+"\n"+tok, 0o600)
	ctrl := filepath.Join(dir, "ctrl")
	staticWrite(t, ctrl, tok[:4]+"\x01"+tok[4:], 0o600)
	world := filepath.Join(dir, "world")
	staticWrite(t, world, tok, 0o644)
	for _, tc := range []struct {
		name string
		cfg  StaticConfig
		want []string // nil: accepted
	}{
		{"file", StaticConfig{ValueFile: good}, nil},
		{"literal allowed", StaticConfig{Value: "Bearer " + tok, AllowLiteral: true}, nil},
		{"literal refused", StaticConfig{Value: "Bearer " + tok}, []string{"a literal value needs the development flag"}},
		{"both", StaticConfig{Value: tok, ValueFile: good, AllowLiteral: true}, []string{"either a value file or a value"}},
		{"neither", StaticConfig{}, []string{"a value file is required"}},
		{"multi-line file", StaticConfig{ValueFile: multiline}, []string{"control character at byte"}},
		{"control char file", StaticConfig{ValueFile: ctrl}, []string{"control character at byte 4"}},
		{"literal with CRLF", StaticConfig{Value: tok + "\r\nX-Evil: 1", AllowLiteral: true}, []string{"control character"}},
		{"literal with DEL", StaticConfig{Value: tok + "\x7f", AllowLiteral: true}, []string{"control character"}},
		{"literal with tab", StaticConfig{Value: "a\tb", AllowLiteral: true}, []string{"control character"}},
		{"world readable", StaticConfig{ValueFile: world}, []string{"accessible by other users"}},
		{"missing", StaticConfig{ValueFile: filepath.Join(dir, "absent")}, []string{"no such file"}},
		{"header and source both wrong", StaticConfig{Header: "Cookie"}, []string{`"Cookie" cannot carry a credential: it is a cookie header`, "value file is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewStatic(tc.cfg)
			if tc.want == nil {
				if err != nil || s == nil {
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
			if strings.Contains(err.Error(), tok) {
				t.Fatal("error leaks the value")
			}
		})
	}
}

func TestStaticHeaders(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   string // canonical name, or the refusal
	}{
		{"Authorization", "Authorization"},
		{"x-api-key", "X-Api-Key"},
		{"PRIVATE-TOKEN", "Private-Token"},
		{"Host", "the request's target"},
		{"cookie", "a cookie header"},
		{"Set-Cookie", "a cookie header"},
		{"Mcp-Session-Id", "an MCP transport header"},
		{"mcp-protocol-version", "an MCP transport header"},
		{"Content-Length", "a framing header"},
		{"content-type", "a framing header"},
		{"Transfer-Encoding", "a hop-by-hop header"},
		{"Connection", "a hop-by-hop header"},
		{"keep-alive", "a hop-by-hop header"},
		{"TE", "a hop-by-hop header"},
		{"Trailer", "a hop-by-hop header"},
		{"Upgrade", "a hop-by-hop header"},
		{"Proxy-Authorization", "a hop-by-hop header"},
		{"Proxy-Connection", "a hop-by-hop header"},
		{"X Api Key", "is not a valid header name"},
		{"X-Api-Key:", "is not a valid header name"},
		{"X-Ä", "is not a valid header name"},
		{"X-A\r\nB", "is not a valid header name"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			got, err := checkStaticHeader(tc.header)
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %q, want %q", err, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStaticFileChanges(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "value")
	a, b := staticToken(t), staticToken(t)
	staticWrite(t, p, "Bearer "+a, 0o400)
	clk := newKeysClock()
	s, err := NewStatic(StaticConfig{ValueFile: p, Now: clk.Now, WatchInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := func(secret string) {
		t.Helper()
		cred, err := s.Credential(ctx, Caller{})
		if err != nil {
			t.Fatal(err)
		}
		if cred.Value != "Bearer "+secret || cred.Secret != secret || cred.ID != staticID(secret) || !cred.Expiry.IsZero() {
			t.Fatalf("credential %+v, want secret %q", cred, secret)
		}
	}
	wantErr := func(msg string, secrets ...string) {
		t.Helper()
		cred, err := s.Credential(ctx, Caller{})
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != Unavailable || ce.Message != msg {
			t.Fatalf("err = %v, want Unavailable %q", err, msg)
		}
		if cred != (Credential{}) {
			t.Fatalf("credential %+v with the error", cred)
		}
		for _, sec := range secrets {
			if strings.Contains(err.Error(), sec) {
				t.Fatalf("error %q leaks the secret", err)
			}
		}
	}
	want(a)

	staticWrite(t, p, "Bearer "+b, 0o400)
	clk.Advance(9 * time.Second)
	want(a) // within the watch interval
	clk.Advance(time.Second)
	want(b)

	chmodT(t, p, 0o644)
	clk.Advance(10 * time.Second)
	wantErr("the static credential for this upstream cannot be read", a, b)
	chmodT(t, p, 0o600)
	clk.Advance(10 * time.Second)
	want(b)

	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	wantErr("the static credential for this upstream cannot be read", b)

	// Recreated with an injected header line: refused, value not echoed.
	staticWrite(t, p, "Bearer "+a+"\r\nX-Injected: "+b, 0o600)
	clk.Advance(10 * time.Second)
	wantErr("the static credential for this upstream is not a valid header value", a, b)

	staticWrite(t, p, a, 0o600)
	clk.Advance(10 * time.Second)
	cred, err := s.Credential(ctx, Caller{})
	if err != nil || cred.Value != a || cred.Secret != a {
		t.Fatalf("after recovery: %+v, %v", cred, err)
	}
}

// FuzzStaticValue: an accepted value is one line without control
// characters, its secret is a non-empty suffix of it, and its id a short
// hash; a refusal never echoes the value.
func FuzzStaticValue(f *testing.F) {
	for _, s := range []string{"Bearer abc", "basic  xyz", "key", "Bearer", "Bearer ", "a\r\nb", "\x00", "Bearer \x7f", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cred, err := newStaticCred("Authorization", []byte(v))
		if err != nil {
			if len(v) >= 8 && strings.Contains(err.Error(), v) {
				t.Fatalf("error %q echoes the value", err)
			}
			return
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted %q", v)
		}
		if cred.Value != v || cred.Secret == "" || !strings.HasSuffix(v, cred.Secret) || cred.ID != staticID(cred.Secret) {
			t.Fatalf("credential %+v for %q", cred, v)
		}
		if cred.Secret != v && cred.Secret[0] == ' ' {
			t.Fatalf("secret %q starts with a space", cred.Secret)
		}
	})
}

// FuzzStaticHeader: an accepted header is a canonical token that is not
// one the gateway owns.
func FuzzStaticHeader(f *testing.F) {
	for _, s := range []string{"Authorization", "x-api-key", "mcp-session-id", "HOST", "a b", "Te", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got, err := checkStaticHeader(h)
		if err != nil {
			return
		}
		if !strings.EqualFold(got, h) || staticRefusedHeader(got) != "" || strings.HasPrefix(strings.ToLower(got), "mcp-") {
			t.Fatalf("accepted %q as %q", h, got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return !staticTokenChar(r) }) {
			t.Fatalf("accepted %q", h)
		}
	})
}

func BenchmarkStaticCredential(b *testing.B) {
	p := filepath.Join(b.TempDir(), "value")
	staticWrite(b, p, "Bearer "+staticToken(b), 0o600)
	s, err := NewStatic(StaticConfig{ValueFile: p})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Credential(ctx, Caller{}); err != nil {
			b.Fatal(err)
		}
	}
}
