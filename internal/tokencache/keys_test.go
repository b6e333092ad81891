package tokencache

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixtures: keys are random, made at runtime.

// tcKey is one key-file line's parts.
type tcKey struct {
	id  string
	raw []byte
	b64 string
}

func (k tcKey) line() string { return k.id + " " + k.b64 }

func tcNewKey(t testing.TB, id string) tcKey {
	t.Helper()
	raw := make([]byte, keySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return tcKey{id: id, raw: raw, b64: base64.StdEncoding.EncodeToString(raw)}
}

// tcWriteFile replaces path atomically (as a Secret update does: a new
// file, renamed over), mode 0400.
func tcWriteFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func tcWriteKeys(t testing.TB, path string, keys ...tcKey) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# mcpgate token cache keys: the first encrypts\n")
	for _, k := range keys {
		b.WriteString(k.line() + "\n")
	}
	tcWriteFile(t, path, b.String(), 0o400)
}

// tcLogs captures slog output at debug level.
type tcLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *tcLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *tcLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *tcLogs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tcClock is a settable clock.
type tcClock struct {
	mu sync.Mutex
	t  time.Time
}

func tcNewClock() *tcClock { return &tcClock{t: time.Now().Truncate(time.Second)} }

func (c *tcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *tcClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tcKeyMaterial lists every form of a key that must never be shown.
func tcKeyMaterial(keys ...tcKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.b64, base64.RawURLEncoding.EncodeToString(k.raw), string(k.raw), k.b64[:12])
	}
	return out
}

func TestParseKeys(t *testing.T) {
	k1, k2 := tcNewKey(t, "k1"), tcNewKey(t, "2026-01.b_x")
	short := base64.StdEncoding.EncodeToString(k1.raw[:31])
	long := base64.StdEncoding.EncodeToString(append(append([]byte{}, k1.raw...), 7))
	half := base64.StdEncoding.EncodeToString(k1.raw[:16])
	for _, tt := range []struct {
		name    string
		file    string
		wantIDs []string
		wantErr []string
	}{
		{name: "one", file: k1.line(), wantIDs: []string{"k1"}},
		{name: "rotation, comments, blank lines, CRLF, spaces",
			file:    "# new on top\r\n\r\n  " + k2.id + "\t" + k2.b64 + "  \r\n# old\n" + k1.line() + "\n\n",
			wantIDs: []string{k2.id, "k1"}},
		{name: "raw std", file: "a " + base64.RawStdEncoding.EncodeToString(k1.raw), wantIDs: []string{"a"}},
		{name: "url", file: "a " + base64.URLEncoding.EncodeToString(k1.raw), wantIDs: []string{"a"}},
		{name: "raw url", file: "a " + base64.RawURLEncoding.EncodeToString(k1.raw), wantIDs: []string{"a"}},
		{name: "longest id", file: strings.Repeat("x", 32) + " " + k1.b64, wantIDs: []string{strings.Repeat("x", 32)}},

		{name: "empty", file: "", wantErr: []string{"there is no key"}},
		{name: "only comments", file: "# " + k1.line() + "\n\n", wantErr: []string{"there is no key"}},
		{name: "no id", file: k1.b64, wantErr: []string{"line 1", "found 1 fields"}},
		{name: "three fields", file: "k1 " + k1.b64 + " extra", wantErr: []string{"found 3 fields"}},
		{name: "bad id", file: "k/1 " + k1.b64, wantErr: []string{"line 1: the key id must be"}},
		{name: "id too long", file: strings.Repeat("x", 33) + " " + k1.b64, wantErr: []string{"the key id must be"}},
		{name: "duplicate id", file: k1.line() + "\nk1 " + k2.b64, wantErr: []string{`line 2: key id "k1" is listed twice`}},
		{name: "bad base64", file: "k1 " + k1.b64[:20] + "!" + k1.b64[21:], wantErr: []string{`key "k1" is not base64`}},
		{name: "31 bytes", file: "k1 " + short, wantErr: []string{`key "k1" is 31 bytes, want 32`}},
		{name: "33 bytes", file: "k1 " + long, wantErr: []string{`is 33 bytes`}},
		{name: "AES-128 size", file: "k1 " + half, wantErr: []string{`is 16 bytes`}},
		{name: "every problem", file: "k/1 " + k1.b64 + "\n" + k2.line() + "\nk3 " + short + "\n" + k2.line(),
			wantErr: []string{"line 1", "line 3", "line 4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseKeys([]byte(tt.file))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(r.ids, ",") != strings.Join(tt.wantIDs, ",") || r.enc.id != tt.wantIDs[0] || len(r.byID) != len(tt.wantIDs) {
					t.Errorf("ids %v, encrypting with %q; want %v", r.ids, r.enc.id, tt.wantIDs)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, secret := range append(tcKeyMaterial(k1, k2), short, long, half) {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows key material: %q", err)
				}
			}
		})
	}
}

// TestParseKeysUsesEveryKey: the first key encrypts, every key decrypts.
func TestParseKeysUsesEveryKey(t *testing.T) {
	k1, k2 := tcNewKey(t, "k1"), tcNewKey(t, "k2")
	old, err := parseKeys([]byte(k1.line()))
	if err != nil {
		t.Fatal(err)
	}
	both, err := parseKeys([]byte(k2.line() + "\n" + k1.line()))
	if err != nil {
		t.Fatal(err)
	}
	v1 := old.seal("n", []byte("one"))
	v2 := both.seal("n", []byte("two"))
	if p, id, err := both.open("n", v1); err != nil || string(p) != "one" || id != "k1" {
		t.Errorf("the second key does not decrypt: %v", err)
	}
	if p, id, err := both.open("n", v2); err != nil || string(p) != "two" || id != "k2" {
		t.Errorf("the first key does not encrypt: %q %v", id, err)
	}
	if _, id, err := old.open("n", v2); err != errUnknownKey || id != "k2" {
		t.Errorf("a ring without k2 opened its value: %v", err)
	}
	// Another key under the same id: authentication fails.
	impostor, _ := parseKeys([]byte(tcNewKey(t, "k1").line()))
	if _, _, err := impostor.open("n", v1); err != errAuth {
		t.Errorf("another key of the same id: %v", err)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := tcNewKey(t, "k1")
	big := strings.Repeat("# padding padding padding padding padding padding padding padding\n", maxKeyFile/64+1) + k.line()
	for _, tt := range []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{name: "0400", content: k.line(), mode: 0o400},
		{name: "0440", content: k.line(), mode: 0o440},
		{name: "0600", content: k.line(), mode: 0o600},
		{name: "world readable", content: k.line(), mode: 0o644, wantErr: "readable by everyone (mode 0644)"},
		{name: "world readable only", content: k.line(), mode: 0o604, wantErr: "readable by everyone"},
		{name: "world writable", content: k.line(), mode: 0o602, wantErr: "writable by everyone"},
		{name: "over 64 KiB", content: big, mode: 0o400, wantErr: "is over 65536 bytes"},
		{name: "bad content", content: "k1 short", mode: 0o400, wantErr: `key "k1"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			tcWriteFile(t, path, tt.content, tt.mode)
			r, _, err := readKeyFile(path)
			if tt.wantErr == "" {
				if err != nil || r.enc.id != "k1" {
					t.Fatalf("%v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			for _, s := range tcKeyMaterial(k) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error shows key material: %v", err)
				}
			}
		})
	}
	if _, _, err := readKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := readKeyFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	// A Kubernetes Secret mount: a symlink to a file in a ..data directory.
	data := filepath.Join(dir, "..2026_01_01")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	tcWriteFile(t, filepath.Join(data, "keys"), k.line(), 0o400)
	link := filepath.Join(dir, "keys-link")
	if err := os.Symlink(filepath.Join(data, "keys"), link); err != nil {
		t.Fatal(err)
	}
	if r, _, err := readKeyFile(link); err != nil || r.enc.id != "k1" {
		t.Errorf("symlinked file: %v", err)
	}
}

// FuzzParseKeys: no panic; a parsed ring is consistent; an error never
// shows a line's key field.
func FuzzParseKeys(f *testing.F) {
	k1, k2 := tcNewKey(f, "k1"), tcNewKey(f, "k2")
	for _, s := range []string{
		k1.line(), k2.line() + "\n" + k1.line(), "# c\n\n" + k1.line() + "\r\n", "k1 " + k1.b64[:30],
		"k1 " + k1.b64 + "\nk1 " + k2.b64, "k/1 " + k1.b64, "a b c", "", "\x00 \xff", "k " + strings.Repeat("=", 44),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseKeys(data)
		if err == nil {
			if len(r.ids) == 0 || r.enc.id != r.ids[0] || r.enc.aead == nil || len(r.byID) != len(r.ids) {
				t.Fatalf("inconsistent ring %v", r.ids)
			}
			for _, id := range r.ids {
				if !validID(id) || r.byID[id] == nil {
					t.Fatalf("id %q", id)
				}
			}
			// It works.
			if p, _, err := r.open("k", r.seal("k", []byte("x"))); err != nil || string(p) != "x" {
				t.Fatalf("round trip: %v", err)
			}
			return
		}
		ids := map[string]bool{}
		var keyFields []string
		for line := range bytes.Lines(data) {
			fs := strings.Fields(string(line))
			if len(fs) > 0 {
				ids[fs[0]] = true
			}
			if len(fs) >= 2 {
				keyFields = append(keyFields, fs[1:]...)
			}
		}
		for _, kf := range keyFields {
			if len(kf) < 16 {
				continue
			}
			inID := false
			for id := range ids {
				inID = inID || strings.Contains(id, kf)
			}
			if !inID && strings.Contains(err.Error(), kf) {
				t.Fatalf("the error %q shows a key field", err)
			}
		}
	})
}
