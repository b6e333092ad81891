package revoke

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCheck(t *testing.T) {
	l, _ := newList(t, Config{})
	jti := randomID(t)
	nb := t0.Add(-time.Hour)
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: jti})
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: nb})
	mustAdd(t, l, Entry{Kind: KindClient, Issuer: iss, Value: "ci-bot", NotBefore: nb})
	// Keys that a naive concatenation would confuse.
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: "x", Value: "yz", NotBefore: nb})

	tests := []struct {
		name string
		tok  Token
		want Kind // "" for not revoked
	}{
		{"jti same issuer", Token{Issuer: iss, JTI: jti, Subject: "bob", IssuedAt: t0}, KindJTI},
		{"jti other issuer", Token{Issuer: iss + "/other", JTI: jti, IssuedAt: t0}, ""},
		{"jti other value", Token{Issuer: iss, JTI: jti + "x", IssuedAt: t0}, ""},
		{"jti without issuer", Token{JTI: jti}, ""},
		{"jti value as subject", Token{Issuer: iss, Subject: jti, IssuedAt: t0}, ""},
		{"subject iat before", Token{Issuer: iss, Subject: "alice", IssuedAt: nb.Add(-time.Second)}, KindSubject},
		{"subject iat equal", Token{Issuer: iss, Subject: "alice", IssuedAt: nb}, ""},
		{"subject iat after", Token{Issuer: iss, Subject: "alice", IssuedAt: nb.Add(time.Second)}, ""},
		{"subject no iat", Token{Issuer: iss, Subject: "alice"}, KindSubject},
		{"subject no jti iat before", Token{Issuer: iss, Subject: "alice", IssuedAt: nb.Add(-time.Minute)}, KindSubject},
		{"subject other issuer", Token{Issuer: "https://other.example", Subject: "alice"}, ""},
		{"subject value as client", Token{Issuer: iss, ClientID: "alice"}, ""},
		{"client iat before", Token{Issuer: iss, ClientID: "ci-bot", IssuedAt: nb.Add(-time.Second)}, KindClient},
		{"client iat equal", Token{Issuer: iss, ClientID: "ci-bot", IssuedAt: nb}, ""},
		{"client iat after", Token{Issuer: iss, ClientID: "ci-bot", IssuedAt: nb.Add(time.Second)}, ""},
		{"client no iat", Token{Issuer: iss, ClientID: "ci-bot"}, KindClient},
		{"client other issuer", Token{Issuer: "x", ClientID: "ci-bot"}, ""},
		{"ambiguous key exact", Token{Issuer: "x", Subject: "yz"}, KindSubject},
		{"ambiguous key shifted", Token{Issuer: "xy", Subject: "z"}, ""},
		{"jti wins over subject", Token{Issuer: iss, JTI: jti, Subject: "alice"}, KindJTI},
		{"subject after, client before", Token{Issuer: iss, Subject: "alice", ClientID: "ci-bot", IssuedAt: nb.Add(-time.Second)}, KindSubject},
		{"unknown token", Token{Issuer: iss, JTI: randomID(t), Subject: "carol", ClientID: "web", IssuedAt: t0}, ""},
		{"empty token", Token{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := l.Check(tt.tok)
			if ok != (tt.want != "") {
				t.Fatalf("Check = %v, want revoked %v (entry %+v)", ok, tt.want != "", e)
			}
			if e.Kind != tt.want {
				t.Errorf("entry kind = %q, want %q", e.Kind, tt.want)
			}
			if ok && e.Issuer != tt.tok.Issuer {
				t.Errorf("entry issuer = %q, want %q", e.Issuer, tt.tok.Issuer)
			}
		})
	}
}

// A token issued in the same second as a default (now) NotBefore, before
// it, has an iat rounded down and is revoked.
func TestCheckSubSecondNotBefore(t *testing.T) {
	l, c := newList(t, Config{})
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice"})
	iat := c.Now().Truncate(time.Second) // issued at 09:30:00.2, iat 09:30:00
	if _, ok := l.Check(Token{Issuer: iss, Subject: "alice", IssuedAt: iat}); !ok {
		t.Error("token issued earlier in the same second not revoked")
	}
	if _, ok := l.Check(Token{Issuer: iss, Subject: "alice", IssuedAt: iat.Add(time.Second)}); ok {
		t.Error("token issued the next second revoked")
	}
}

func TestDefaults(t *testing.T) {
	const life = 2 * time.Hour
	tests := []struct {
		name string
		in   Entry
		want Entry
	}{
		{
			"jti default until",
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1"},
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1", Until: t0.Add(life), Created: t0},
		},
		{
			"jti given until",
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1", Until: t0.Add(5 * time.Minute)},
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1", Until: t0.Add(5 * time.Minute), Created: t0},
		},
		{
			"subject defaults",
			Entry{Kind: KindSubject, Issuer: iss, Value: "alice", Reason: "laptop stolen"},
			Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0, Until: t0.Add(life), Created: t0, Reason: "laptop stolen"},
		},
		{
			"subject past not before",
			Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(-time.Hour)},
			Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(-time.Hour), Until: t0.Add(life - time.Hour), Created: t0},
		},
		{
			"client not before within skew",
			Entry{Kind: KindClient, Issuer: iss, Value: "c", NotBefore: t0.Add(30 * time.Second)},
			Entry{Kind: KindClient, Issuer: iss, Value: "c", NotBefore: t0.Add(30 * time.Second), Until: t0.Add(30*time.Second + life), Created: t0},
		},
		{
			"client short until extended",
			Entry{Kind: KindClient, Issuer: iss, Value: "c", Until: t0.Add(time.Minute)},
			Entry{Kind: KindClient, Issuer: iss, Value: "c", NotBefore: t0, Until: t0.Add(life), Created: t0},
		},
		{
			"client long until kept",
			Entry{Kind: KindClient, Issuer: iss, Value: "c", Until: t0.Add(30 * 24 * time.Hour)},
			Entry{Kind: KindClient, Issuer: iss, Value: "c", NotBefore: t0, Until: t0.Add(30 * 24 * time.Hour), Created: t0},
		},
		{
			"times normalized to UTC",
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1", Until: t0.Add(time.Hour).In(time.FixedZone("X", 7200))},
			Entry{Kind: KindJTI, Issuer: iss, Value: "j1", Until: t0.Add(time.Hour), Created: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newList(t, Config{MaxTokenLifetime: life})
			got := mustAdd(t, l, tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Add (-want +got):\n%s", diff)
			}
			if got.Until.Location() != time.UTC {
				t.Errorf("Until location %v, want UTC", got.Until.Location())
			}
			if diff := cmp.Diff([]Entry{tt.want}, l.List()); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	long := strings.Repeat("v", MaxValueBytes+1)
	tests := []struct {
		name    string
		e       Entry
		want    string
		expired bool
	}{
		{"unknown kind", Entry{Kind: "session", Issuer: iss, Value: "v"}, `unknown kind "session"`, false},
		{"empty kind", Entry{Issuer: iss, Value: "v"}, "unknown kind", false},
		{"empty issuer", Entry{Kind: KindJTI, Value: "v"}, "issuer is empty", false},
		{"empty value", Entry{Kind: KindSubject, Issuer: iss}, "value is empty", false},
		{"long value", Entry{Kind: KindJTI, Issuer: iss, Value: long}, "value is longer than 1024 bytes", false},
		{"long issuer", Entry{Kind: KindJTI, Issuer: long, Value: "v"}, "issuer is longer than 1024 bytes", false},
		{"invalid UTF-8 value", Entry{Kind: KindJTI, Issuer: iss, Value: "a\xffb"}, "value is not valid UTF-8", false},
		{"past until", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Until: t0.Add(-time.Second)}, "is not in the future", true},
		{"until now", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Until: t0}, "is not in the future", true},
		{"far future until", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Until: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "until out of range", false},
		{"not before too far ahead", Entry{Kind: KindSubject, Issuer: iss, Value: "v", NotBefore: t0.Add(MaxClockSkew + time.Second)}, "more than 1m0s in the future", false},
		{"not before on jti", Entry{Kind: KindJTI, Issuer: iss, Value: "v", NotBefore: t0}, "not_before applies to subject and client", false},
		{"long reason", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: strings.Repeat("é", MaxReasonChars+1)}, "reason is longer than 256 characters", false},
		{"reason newline", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: "a\nb"}, "control character U+000A", false},
		{"reason escape", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: "a\x1b[31m"}, "control character U+001B", false},
		{"reason bidi", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: "a\u202eb"}, "control character U+202E", false},
		{"reason line separator", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: "a\u2028b"}, "control character U+2028", false},
		{"reason invalid UTF-8", Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: "\xc3"}, "reason is not valid UTF-8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newList(t, Config{})
			var called bool
			l.Subscribe(func(Entry) { called = true })
			_, err := l.Add(tt.e)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Add error = %v, want ErrInvalid", err)
			}
			if errors.Is(err, ErrExpired) != tt.expired {
				t.Errorf("errors.Is(ErrExpired) = %v, want %v", !tt.expired, tt.expired)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), long) {
				t.Error("error quotes the over-long input")
			}
			if l.Len() != 0 || called {
				t.Errorf("invalid entry stored (Len %d) or notified (%v)", l.Len(), called)
			}
		})
	}
	// Every problem is reported at once.
	l, _ := newList(t, Config{})
	_, err := l.Add(Entry{Kind: "x", Reason: "\x00"})
	for _, want := range []string{"unknown kind", "issuer is empty", "value is empty", "control character"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Reasons of exactly the maximum length are accepted.
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "v", Reason: strings.Repeat("é", MaxReasonChars)})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: strings.Repeat("v", MaxValueBytes)})
	if _, err := l.Remove("bogus", iss, "v"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Remove with unknown kind: %v, want ErrInvalid", err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"negative lifetime", Config{MaxTokenLifetime: -time.Second}, []string{"MaxTokenLifetime"}},
		{"huge lifetime", Config{MaxTokenLifetime: 11 * 365 * 24 * time.Hour}, []string{"MaxTokenLifetime"}},
		{"negative max entries", Config{MaxEntries: -1}, []string{"MaxEntries"}},
		{"both", Config{MaxTokenLifetime: -1, MaxEntries: maxEntriesLimit + 1}, []string{"MaxTokenLifetime", "MaxEntries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	l, err := New(Config{})
	if err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	e := mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "v"})
	if d := e.Until.Sub(e.Created); d != DefaultMaxTokenLifetime {
		t.Errorf("default lifetime %v, want %v", d, DefaultMaxTokenLifetime)
	}
	if l.maxEntries != DefaultMaxEntries {
		t.Errorf("default MaxEntries %d", l.maxEntries)
	}
}

func TestExpiry(t *testing.T) {
	l, c := newList(t, Config{MaxTokenLifetime: time.Hour})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "short", Until: t0.Add(10 * time.Minute)})
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice"}) // until t0+1h
	mustAdd(t, l, Entry{Kind: KindClient, Issuer: iss, Value: "c", Until: t0.Add(3 * time.Hour)})

	steps := []struct {
		at            time.Duration
		jti, sub, cli bool
		list          int
	}{
		{0, true, true, true, 3},
		{10*time.Minute - time.Nanosecond, true, true, true, 3},
		{10 * time.Minute, false, true, true, 2},
		{time.Hour, false, false, true, 1},
		{3 * time.Hour, false, false, false, 0},
	}
	for _, s := range steps {
		c.Advance(t0.Add(s.at).Sub(c.Now()))
		_, jti := l.Check(Token{Issuer: iss, JTI: "short"})
		_, sub := l.Check(Token{Issuer: iss, Subject: "alice"})
		_, cli := l.Check(Token{Issuer: iss, ClientID: "c"})
		if jti != s.jti || sub != s.sub || cli != s.cli {
			t.Errorf("at +%v: revoked jti %v sub %v client %v, want %v %v %v", s.at, jti, sub, cli, s.jti, s.sub, s.cli)
		}
		if n := len(l.List()); n != s.list {
			t.Errorf("at +%v: List has %d, want %d", s.at, n, s.list)
		}
	}
	if l.Len() != 3 {
		t.Errorf("Len before Sweep = %d, want 3 (lazy)", l.Len())
	}
	if n := l.Sweep(c.Now()); n != 3 || l.Len() != 0 {
		t.Errorf("Sweep = %d, Len %d; want 3, 0", n, l.Len())
	}
	if n := l.Sweep(c.Now()); n != 0 {
		t.Errorf("second Sweep = %d", n)
	}
}

func TestSweepOnAdd(t *testing.T) {
	l, c := newList(t, Config{})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a", Until: t0.Add(time.Minute)})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "b", Until: t0.Add(time.Hour)})
	c.Advance(time.Minute)
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "c"})
	if l.Len() != 2 {
		t.Errorf("Len = %d after Add past an expiry, want 2", l.Len())
	}
}

func TestAddIdempotent(t *testing.T) {
	l, c := newList(t, Config{MaxTokenLifetime: time.Hour})
	first := mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(-10 * time.Minute), Reason: "first"})
	c.Advance(time.Minute)
	// An earlier NotBefore does not loosen the entry; the reason is kept
	// when none is given.
	got := mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(-20 * time.Minute)})
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("re-Add with earlier NotBefore changed the entry (-want +got):\n%s", diff)
	}
	// A later NotBefore tightens it and extends Until; Created stays.
	got = mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "alice", Reason: "second"})
	want := Entry{Kind: KindSubject, Issuer: iss, Value: "alice", NotBefore: t0.Add(time.Minute), Until: t0.Add(time.Minute + time.Hour), Created: t0, Reason: "second"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tightening Add (-want +got):\n%s", diff)
	}
	// jti: the later Until wins.
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "j", Until: t0.Add(3 * time.Hour)})
	got = mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "j", Until: t0.Add(2 * time.Hour)})
	if !got.Until.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("jti Until = %v, want the later one", got.Until)
	}
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2", l.Len())
	}
}

func TestMaxEntries(t *testing.T) {
	l, c := newList(t, Config{MaxEntries: 2})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a", Until: t0.Add(time.Minute)})
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "b"})
	_, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: "c"})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("third Add: %v, want ErrFull", err)
	}
	if _, ok := l.Check(Token{Issuer: iss, JTI: "c"}); ok || l.Len() != 2 {
		t.Error("refused entry stored")
	}
	for _, v := range []string{"a", "b"} {
		if _, ok := l.Check(Token{Issuer: iss, JTI: v}); !ok {
			t.Errorf("live entry %q evicted", v)
		}
	}
	// Re-adding an existing key is not a new entry.
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "b", Reason: "again"})
	// Room frees up once an entry expires.
	c.Advance(time.Minute)
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "c"})
}

func TestRemove(t *testing.T) {
	l, _ := newList(t, Config{})
	mustAdd(t, l, Entry{Kind: KindClient, Issuer: iss, Value: "c"})
	mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "c"})
	tok := Token{Issuer: iss, ClientID: "c"}
	for _, tt := range []struct {
		kind         Kind
		issuer, val  string
		want         bool
		stillRevoked bool
	}{
		{KindClient, "other", "c", false, true},
		{KindJTI, iss, "c", false, true},
		{KindClient, iss, "c", true, false},
		{KindClient, iss, "c", false, false},
	} {
		got, err := l.Remove(tt.kind, tt.issuer, tt.val)
		if err != nil || got != tt.want {
			t.Errorf("Remove(%s, %s, %s) = %v, %v; want %v", tt.kind, tt.issuer, tt.val, got, err, tt.want)
		}
		if _, ok := l.Check(tok); ok != tt.stillRevoked {
			t.Errorf("after Remove(%s, %s, %s): revoked %v, want %v", tt.kind, tt.issuer, tt.val, ok, tt.stillRevoked)
		}
	}
	if _, ok := l.Check(Token{Issuer: iss, Subject: "c"}); !ok {
		t.Error("Remove of the client entry removed the subject entry")
	}
}

func TestSubscribe(t *testing.T) {
	l, _ := newList(t, Config{})
	var got1, got2 []Entry
	cancel1 := l.Subscribe(func(e Entry) { got1 = append(got1, e) })
	l.Subscribe(func(e Entry) {
		// Subscribers may call the list: the entry is in effect.
		if _, ok := l.Check(Token{Issuer: e.Issuer, JTI: e.Value}); !ok && e.Kind == KindJTI {
			t.Errorf("notified of %q before it took effect", e.Value)
		}
		got2 = append(got2, e)
	})
	a := mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a"})
	a2 := mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: "a", Reason: "again"})
	if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss}); err == nil {
		t.Fatal("invalid Add accepted")
	}
	cancel1()
	cancel1() // idempotent
	b := mustAdd(t, l, Entry{Kind: KindSubject, Issuer: iss, Value: "b"})
	if _, err := l.Remove(KindJTI, iss, "a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Entry{a, a2}, got1); diff != "" {
		t.Errorf("cancelled subscriber (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Entry{a, a2, b}, got2); diff != "" {
		t.Errorf("subscriber (-want +got):\n%s", diff)
	}
}

func TestLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	l, _ := newList(t, Config{Logger: logger})
	jti := randomID(t)
	mustAdd(t, l, Entry{Kind: KindJTI, Issuer: iss, Value: jti, Reason: "leaked in CI log"})
	if _, err := l.Remove(KindJTI, iss, jti); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, jti) {
		t.Errorf("log holds the jti: %s", out)
	}
	for _, want := range []string{"token revocation added", "token revocation removed", "value_sha256=" + hashValue(jti), "leaked in CI log"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
}

func TestConcurrent(t *testing.T) {
	l, c := newList(t, Config{MaxEntries: 500})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 50 {
					l.Check(Token{Issuer: iss, JTI: fmt.Sprint("j", i), Subject: fmt.Sprint("s", i), IssuedAt: t0})
				}
				l.List()
				l.Len()
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Go(func() {
			for i := range 200 {
				v := fmt.Sprint("j", i%50)
				switch (i + w) % 4 {
				case 0, 1:
					if _, err := l.Add(Entry{Kind: KindJTI, Issuer: iss, Value: v, Until: c.Now().Add(time.Hour)}); err != nil { // the clock advances 100 s meanwhile
						t.Error(err)
					}
				case 2:
					l.Remove(KindJTI, iss, v)
				case 3:
					l.Sweep(c.Now())
				}
			}
		})
	}
	writers.Go(func() {
		for range 100 {
			c.Advance(time.Second)
		}
	})
	writers.Wait()
	close(stop)
	wg.Wait()
	// What is listed is what Check sees.
	for _, e := range l.List() {
		if _, ok := l.Check(Token{Issuer: e.Issuer, JTI: e.Value}); !ok {
			t.Errorf("listed entry %q not revoked", e.Value)
		}
	}
}
