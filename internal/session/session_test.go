package session

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/redisconn"
)

var (
	alice = Principal{"https://as", "alice", "client-1"}
	bob   = Principal{"https://as", "bob", "client-1"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func bind(t *testing.T, s *Store, id string, p Principal, route string) {
	t.Helper()
	r, err := s.Reserve(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(id, Binding{Principal: p, Route: route, Version: "2025-11-25"}); err != nil {
		t.Fatal(err)
	}
}

func TestLookupOwnership(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{IdleTimeout: time.Minute, Now: c.now})
	bind(t, s, "sess-1", alice, "docs")

	for _, tc := range []struct {
		name  string
		id    string
		p     Principal
		route string
		want  error
	}{
		{"owner", "sess-1", alice, "docs", nil},
		{"other subject", "sess-1", bob, "docs", ErrUnknown},
		{"other client", "sess-1", Principal{"https://as", "alice", "client-2"}, "docs", ErrUnknown},
		{"other issuer", "sess-1", Principal{"https://other", "alice", "client-1"}, "docs", ErrUnknown},
		{"other route", "sess-1", alice, "mail", ErrUnknown},
		{"unknown id", "sess-2", alice, "docs", ErrUnknown},
		{"case variant id", "SESS-1", alice, "docs", ErrUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Lookup(tc.id, tc.p, tc.route)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && b.Version != "2025-11-25" {
				t.Errorf("binding = %+v", b)
			}
		})
	}

	// Idle expiry, refreshed by use.
	c.add(50 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Fatalf("before idle timeout: %v", err)
	}
	c.add(50 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Fatalf("use refreshes the idle timer: %v", err)
	}
	c.add(61 * time.Second)
	if _, err := s.Lookup("sess-1", alice, "docs"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("after idle timeout: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("expired binding kept")
	}
}

func TestCommitNeverStealsASession(t *testing.T) {
	s := New(Config{})
	bind(t, s, "sess-1", alice, "docs")
	r, err := s.Reserve(bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit("sess-1", Binding{Principal: bob, Route: "docs"}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("commit over another's session: %v", err)
	}
	if _, err := s.Lookup("sess-1", alice, "docs"); err != nil {
		t.Errorf("owner lost the session: %v", err)
	}
	if _, err := s.Lookup("sess-1", bob, "docs"); err == nil {
		t.Errorf("bob took over alice's session")
	}
}

func TestCaps(t *testing.T) {
	s := New(Config{MaxPerPrincipal: 2, MaxSessions: 3})
	bind(t, s, "a1", alice, "docs")
	r, err := s.Reserve(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(alice); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("third alice session (one pending): %v", err)
	}
	r.Release()
	r.Release() // idempotent
	bind(t, s, "a2", alice, "docs")
	bind(t, s, "b1", bob, "docs")
	if _, err := s.Reserve(bob); !errors.Is(err, ErrFull) {
		t.Fatalf("store over capacity: %v", err)
	}
	s.Delete("a2", bob) // not bob's: no effect
	if s.Len() != 3 {
		t.Fatalf("Delete by a non-owner removed a session")
	}
	s.Delete("a2", alice)
	bind(t, s, "b2", bob, "docs")
}

func TestConcurrentReservationsRespectCap(t *testing.T) {
	s := New(Config{MaxPerPrincipal: 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Reserve(alice)
			if err != nil {
				return
			}
			if r.Commit(fmt.Sprint("s", i), Binding{Route: "docs"}) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 5 || s.Len() != 5 {
		t.Errorf("%d sessions committed (%d stored), want exactly 5", ok, s.Len())
	}
}

func TestPendingServerRequests(t *testing.T) {
	s := New(Config{MaxPending: 2})
	bind(t, s, "sess", alice, "docs")
	if s.TakePending("sess", "1") {
		t.Fatal("unknown request accepted")
	}
	s.AddPending("sess", "1")
	s.AddPending("nope", "1") // unknown session: ignored
	if !s.TakePending("sess", "1") {
		t.Fatal("pending request not found")
	}
	if s.TakePending("sess", "1") {
		t.Fatal("a response was accepted twice")
	}
	s.AddPending("sess", "a")
	s.AddPending("sess", "b")
	s.AddPending("sess", "c") // evicts one; bounded
	n := 0
	for _, id := range []string{"a", "b", "c"} {
		if s.TakePending("sess", id) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d pending kept, want the bound of 2", n)
	}
}

func TestTasks(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{MaxTasks: 2, TaskTTL: time.Hour, Now: c.now})
	s.BindTask("docs", "t1", alice)
	s.BindTask("docs", "t1", bob) // cannot re-own
	if !s.TaskOwnedBy("docs", "t1", alice) || s.TaskOwnedBy("docs", "t1", bob) {
		t.Fatal("task ownership wrong")
	}
	if s.TaskOwnedBy("mail", "t1", alice) {
		t.Fatal("task visible on another route")
	}
	s.BindTask("docs", "t2", bob)
	s.BindTask("docs", "t3", bob) // evicts the least recently used (t1)
	if s.TaskOwnedBy("docs", "t1", alice) {
		t.Error("store exceeded MaxTasks")
	}
	c.add(2 * time.Hour)
	if s.TaskOwnedBy("docs", "t3", bob) {
		t.Error("expired task still owned")
	}
}

func TestStreams(t *testing.T) {
	st := NewStreams(2)
	r1, err := st.Acquire(alice)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := st.Acquire(alice)
	if _, err := st.Acquire(alice); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("third stream: %v", err)
	}
	if _, err := st.Acquire(bob); err != nil {
		t.Fatalf("bob is not limited by alice: %v", err)
	}
	r1()
	r1() // idempotent
	if _, err := st.Acquire(alice); err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
	if st.Open() != 2 {
		t.Errorf("Open = %d, want 2", st.Open())
	}
}

func TestParseBinding(t *testing.T) {
	owner := principalHash(alice)
	good := [bindingFields]string{owner, "docs", "2025-11-25", "1800000000000", "0123456789abcdef01234567"}
	all := [bindingFields]bool{true, true, true, true, true}
	st, found, err := parseBinding(good, all)
	if err != nil || !found || st.owner != owner || st.route != "docs" || st.version != "2025-11-25" ||
		!st.seen.Equal(time.UnixMilli(1_800_000_000_000)) || st.gen != good[4] {
		t.Fatalf("parse = %+v %v %v", st, found, err)
	}
	if _, found, err := parseBinding([bindingFields]string{}, [bindingFields]bool{}); found || err != nil {
		t.Fatalf("absent binding: %v %v", found, err)
	}
	for _, tc := range []struct {
		name  string
		field int
		value string
	}{
		{"short owner", 0, owner[1:]},
		{"owner not base64url", 0, owner[:42] + "+"},
		{"raw subject as owner", 0, "alice"},
		{"huge route", 1, strings.Repeat("r", maxStoredField+1)},
		{"huge version", 2, strings.Repeat("v", maxStoredField+1)},
		{"time not a number", 3, "12x"},
		{"negative time", 3, "-5"},
		{"signed time", 3, "+5"},
		{"empty time", 3, ""},
		{"time overflow", 3, strings.Repeat("9", 30)},
		{"empty generation", 4, ""},
		{"generation not hex", 4, "XYZ"},
		{"huge generation", 4, strings.Repeat("a", 65)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := good
			v[tc.field] = tc.value
			if _, _, err := parseBinding(v, all); !errors.Is(err, redisconn.ErrCorrupt) || !errors.Is(err, redisconn.ErrUnavailable) {
				t.Errorf("accepted or wrong error: %v", err)
			}
		})
	}
	for i := range bindingFields {
		some := all
		some[i] = false
		if _, _, err := parseBinding(good, some); err == nil {
			t.Errorf("binding without field %d accepted", i)
		}
	}
}

func TestParseTask(t *testing.T) {
	owner := principalHash(bob)
	if o, seen, err := parseTask(owner + " 1800000000000"); err != nil || o != owner || !seen.Equal(time.UnixMilli(1_800_000_000_000)) {
		t.Fatalf("parse = %q %v %v", o, seen, err)
	}
	for _, v := range []string{"", owner, owner + " ", owner + "  1", owner + " 1 ", "bob 1", owner[1:] + "= 1", owner + " -1",
		owner + " " + strings.Repeat("1", 16), owner + "_1"} {
		if _, _, err := parseTask(v); !errors.Is(err, redisconn.ErrCorrupt) {
			t.Errorf("parseTask(%q) accepted: %v", v, err)
		}
	}
}

func TestHashesUnambiguous(t *testing.T) {
	ps := []Principal{alice, {"https://asalice", "", "client-1"}, {"https://as", "alicec", "lient-1"}, {}, {"", "", "x"}, {"x", "", ""}}
	seen := map[string]Principal{}
	for _, p := range ps {
		h := principalHash(p)
		if !validHash(h) {
			t.Fatalf("hash %q not valid", h)
		}
		if q, dup := seen[h]; dup {
			t.Errorf("%v and %v share a hash", p, q)
		}
		seen[h] = p
	}
	if taskHash("a\x00b", "c") == taskHash("a", "b\x00c") || taskHash("ab", "c") == taskHash("a", "bc") {
		t.Error("task hashes collide across the route/task boundary")
	}
	if requestHash("1") == requestHash(`"1"`) {
		t.Error("request ids 1 and \"1\" share a hash")
	}
}

func TestRecentWritesBounded(t *testing.T) {
	w := recentWrites{m: map[string]recentWrite{}}
	for i := range 3 * maxRecent {
		w.wrote(fmt.Sprint("k", i), "g")
	}
	if len(w.m) > maxRecent {
		t.Errorf("%d recent writes kept, bound %d", len(w.m), maxRecent)
	}
	if g, ok := w.get(fmt.Sprint("k", 3*maxRecent-1)); !ok || g != "g" {
		t.Error("the newest write was forgotten")
	}
	w.drop(fmt.Sprint("k", 3*maxRecent-1))
	if _, ok := w.get(fmt.Sprint("k", 3*maxRecent-1)); ok {
		t.Error("drop kept the entry")
	}
}

func FuzzParseBinding(f *testing.F) {
	f.Add(principalHash(alice), "docs", "2025-11-25", "1800000000000", "0123456789abcdef01234567", uint8(31), principalHash(bob)+" 5")
	f.Add("", "", "", "", "", uint8(0), "")
	f.Add("x", "\x00", "\xff", "99999999999999999999", "g", uint8(7), "x y")
	f.Fuzz(func(t *testing.T, p, r, v, s, g string, mask uint8, task string) {
		vals := [bindingFields]string{p, r, v, s, g}
		var present [bindingFields]bool
		for i := range present {
			present[i] = mask&(1<<i) != 0
		}
		st, found, err := parseBinding(vals, present)
		switch {
		case err != nil:
			if found || !errors.Is(err, redisconn.ErrCorrupt) {
				t.Fatalf("error %v with found=%v", err, found)
			}
		case found:
			if !validHash(st.owner) || len(st.route) > maxStoredField || len(st.version) > maxStoredField ||
				st.seen.Before(time.UnixMilli(0)) || !validGen(st.gen) {
				t.Fatalf("accepted a malformed binding %+v", st)
			}
			// What decodes is exactly what was stored.
			ms, perr := strconv.ParseInt(s, 10, 64)
			if st.owner != p || st.route != r || st.version != v || st.gen != g || perr != nil || st.seen.UnixMilli() != ms {
				t.Fatalf("decoded %+v from %q", st, vals)
			}
		case mask&(1<<bindingFields-1) != 0:
			t.Fatalf("fields present (mask %b) but no binding and no error", mask)
		}
		owner, seen, err := parseTask(task)
		if err == nil && (!validHash(owner) || seen.Before(time.UnixMilli(0)) || owner+" "+strings.SplitN(task, " ", 2)[1] != task) {
			t.Fatalf("parseTask(%q) = %q %v", task, owner, seen)
		}
	})
}
