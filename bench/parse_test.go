package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    cpuTicks
		wantErr bool
	}{
		{"plain", "1234 (mcpgate) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 100 0 0", cpuTicks{250, 37}, false},
		{"space and parens in comm", "99 (a) b (c) R 1 2 3 4 5 6 7 8 9 10 11 12 0 0 20 0", cpuTicks{11, 12}, false},
		{"huge values", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 0 0 0", cpuTicks{18446744073709551615, 0}, false},
		{"no comm", "1234 mcpgate S 1 2", cpuTicks{}, true},
		{"reversed parens", "1234 )x( S 1 2 3 4 5 6 7 8 9 10 11 12 13", cpuTicks{}, true},
		{"too short", "1234 (x) S 1 2 3", cpuTicks{}, true},
		{"utime not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 0 0 0", cpuTicks{}, true},
		{"stime negative", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 -2 0 0", cpuTicks{}, true},
		{"empty", "", cpuTicks{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseProcStat(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestReadCPUSelf reads this process's own stat: burning CPU shows.
func TestReadCPUSelf(t *testing.T) {
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Total() <= before.Total() {
		t.Errorf("100ms of work did not show: %+v → %+v (x=%d)", before, after, x)
	}
	if _, err := readCPU(1 << 30); err == nil {
		t.Error("reading a pid that cannot exist succeeded")
	}
	if hz := clockTicks(context.Background()); hz <= 0 {
		t.Errorf("CLK_TCK %d", hz)
	}
	if d := ticksToDuration(250, 100); d != 2500*time.Millisecond {
		t.Errorf("250 ticks at 100 Hz = %v", d)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1234 (mcpgate) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 12 0 100 0 0"))
	f.Add([]byte("99 (a) b (c) R 1 2 3 4 5 6 7 8 9 10 11 12"))
	f.Add([]byte("()"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseProcStat(b)
		if err != nil {
			if got != (cpuTicks{}) {
				t.Fatalf("error %v with values %+v", err, got)
			}
			return
		}
		// A parse succeeds only on what has the structure of a stat line,
		// and the values are the 12th and 13th fields after the last ')'.
		end := strings.LastIndexByte(string(b), ')')
		fields := strings.Fields(string(b[end+1:]))
		if got.User != mustUint(t, fields[11]) || got.System != mustUint(t, fields[12]) {
			t.Fatalf("%+v from %q", got, fields)
		}
	})
}

func mustUint(t *testing.T, s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("parse accepted %q: %v", s, err)
	}
	return n
}

func TestParseMetrics(t *testing.T) {
	in := `# HELP mcpgate_requests_total Requests.
# TYPE mcpgate_requests_total counter
mcpgate_requests_total{route="bench",decision="allow"} 1500
mcpgate_requests_total{route="bench",decision="deny"} 2
mcpgate_redactions_total{detector="aws_access_key",where="result"} 1
go_goroutines 12
weird{label="has } brace"} 3
not_a_number{} x
mcpgate_requests_total{route="other"} 1e3 1700000000000
`
	got, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"mcpgate_requests_total": 2502, "mcpgate_redactions_total": 1, "go_goroutines": 12, "weird": 3} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if _, ok := got["not_a_number"]; ok {
		t.Error("an unparsable sample was counted")
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add("a 1\nb{x=\"y\"} 2\n# c 3\n")
	f.Add("}{ 1")
	f.Add("x{} NaN\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseMetrics(strings.NewReader(s))
		if err != nil {
			return // a line too long for the scanner
		}
		for name := range got {
			if strings.ContainsAny(name, "{ \n") || strings.HasPrefix(name, "#") {
				t.Fatalf("metric name %q", name)
			}
		}
	})
}

func TestContainsIDAndFragment(t *testing.T) {
	for _, tc := range []struct {
		body string
		id   int64
		want bool
	}{
		{`{"jsonrpc":"2.0","id":42,"result":{}}`, 42, true},
		{`{"jsonrpc":"2.0","id":421,"result":{}}`, 42, false},
		{`{"jsonrpc":"2.0","id":4,"result":{}}`, 42, false},
		{`{"id":421,"x":{"id":42}}`, 42, true},
		{`{"jsonrpc":"2.0","result":{},"id":42}`, 42, true},
		{`{"jsonrpc":"2.0","id":"42","result":{}}`, 42, false},
		{``, 1, false},
	} {
		if got := containsID([]byte(tc.body), tc.id); got != tc.want {
			t.Errorf("containsID(%s, %d) = %v", tc.body, tc.id, got)
		}
	}
	for _, tc := range []struct {
		url  string
		id   int64
		okay bool
	}{
		{"http://h/mcp#17", 17, true}, {"http://h/mcp", 0, false}, {"http://h/mcp#x", 0, false}, {"http://h/a#1#2", 2, true},
	} {
		id, ok := fragmentID(tc.url)
		if id != tc.id || ok != tc.okay {
			t.Errorf("fragmentID(%q) = %d, %v", tc.url, id, ok)
		}
	}
	if b := string(searchBody(7)); b != `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"query":"quarterly plan","workspace":"bench"}}}` {
		t.Errorf("searchBody = %s", b)
	}
}

func FuzzContainsID(f *testing.F) {
	f.Add([]byte(`{"id":12,"result":1}`), int64(12))
	f.Add([]byte(`"id":123"id":12`), int64(12))
	f.Fuzz(func(t *testing.T, body []byte, id int64) {
		if id < 0 {
			return
		}
		got := containsID(body, id)
		needle := `"id":` + strconv.FormatInt(id, 10)
		if got && !strings.Contains(string(body), needle) {
			t.Fatalf("found %s in %q", needle, body)
		}
		if strings.Contains(string(body)+" ", needle+" ") && !got {
			t.Fatalf("missed %s at the end of %q", needle, body)
		}
	})
}

// TestAttackFailsLoudly drives the real load path (vegeta, targeter,
// checker) against servers that answer wrongly in one way each.
func TestAttackFailsLoudly(t *testing.T) {
	want := searchResult(searchIn{Query: benchQuery, Workspace: benchWorkspace})
	answer := func(w http.ResponseWriter, id, text string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":%q}]}}`, id, text)
	}
	idOf := func(r *http.Request) string {
		var buf [256]byte
		n, _ := r.Body.Read(buf[:])
		s := string(buf[:n])
		i := strings.Index(s, `"id":`) + 5
		j := strings.IndexByte(s[i:], ',')
		return s[i : i+j]
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"good", func(w http.ResponseWriter, r *http.Request) { answer(w, idOf(r), want) }, ""},
		{"status 500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, "non-200 or transport"},
		{"JSON-RPC error", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32031,"message":"denied"}}`, idOf(r))
		}, "JSON-RPC errors: "},
		{"another id", func(w http.ResponseWriter, r *http.Request) { answer(w, "1"+idOf(r), want) }, "another id"},
		{"wrong text, seen by sampling only", func(w http.ResponseWriter, r *http.Request) { answer(w, idOf(r), "something else") }, "(sampled)"},
		{"one 500 in many", func() http.HandlerFunc {
			var n atomic.Int64
			return func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 150 {
					http.Error(w, "once", http.StatusServiceUnavailable)
					return
				}
				answer(w, idOf(r), want)
			}
		}(), "HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			var ids atomic.Int64
			tr := newLoadTargeter(srv.URL+"/mcp", []string{"tok"}, &ids).target
			chk := &checker{want: want}
			var lat []time.Duration
			client := newClient(2)
			// Until enough requests for a sampled body.
			for ctx := context.Background(); chk.n < 3*sampleEvery; {
				attack(ctx, client, 2, tr, 100*time.Millisecond, chk, &lat)
			}
			err := chk.err()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("a good server failed the check: %v", err)
				}
				if chk.sampled == 0 || len(lat) != chk.n {
					t.Errorf("sampled %d, %d latencies for %d results", chk.sampled, len(lat), chk.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "tok") && !strings.Contains(tc.wantErr, "tok") {
				t.Errorf("the error names the token: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Duration: time.Second, Rounds: 1, Concurrency: []int{1}, Targets: []string{"direct"}, Tools: 50}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := Config{Duration: 0, Warmup: -1, Rounds: 0, Concurrency: []int{0, 8, 8}, Targets: []string{"proxy", "nope", "proxy"}, Tools: 3, MCPGate: "/does/not/exist"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("not every problem reported: %v", err)
	}
	for _, want := range []string{"-duration", "-warmup", "-rounds", "0 is not between", "8 given twice", `unknown target "nope"`, `"proxy" given twice`, "tools must be", "-mcpgate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (&Config{Duration: time.Second, Rounds: 1, Tools: 50}).Validate(); err == nil || !strings.Contains(err.Error(), "-concurrency needs") || !strings.Contains(err.Error(), "-targets needs") {
		t.Errorf("empty lists: %v", err)
	}

	// -principals and -profile.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(c *Config)
		wantErr []string
	}{
		{"principals 0 (one per worker)", func(c *Config) { c.Principals = 0 }, nil},
		{"principals 3", func(c *Config) { c.Principals = 3 }, nil},
		{"principals at the bound", func(c *Config) { c.Principals = maxPrincipals }, nil},
		{"negative principals", func(c *Config) { c.Principals = -1 }, []string{"-principals: -1 is not between"}},
		{"too many principals", func(c *Config) { c.Principals = maxPrincipals + 1 }, []string{"-principals"}},
		{"profile dir created", func(c *Config) { c.Profile = filepath.Join(t.TempDir(), "a", "b") }, nil},
		{"profile dir under a file", func(c *Config) { c.Profile = filepath.Join(file, "prof") }, []string{"-profile", "not a directory"}},
		{"profile dir is a file", func(c *Config) { c.Profile = file }, []string{"-profile"}},
		{"profile without mcpgate", func(c *Config) { c.Profile = t.TempDir(); c.Targets = []string{"direct"} }, []string{"-profile needs an mcpgate target"}},
		{"negative profile time", func(c *Config) { c.ProfileTime = -time.Second }, []string{"profile time"}},
		{"every problem at once", func(c *Config) { c.Principals = -2; c.Profile = filepath.Join(file, "x"); c.Rounds = 0 },
			[]string{"-principals", "-profile", "-rounds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Duration: time.Second, Rounds: 1, Concurrency: []int{1}, Targets: []string{"mcpgate-full"}, Tools: 50}
			tc.edit(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if c.Profile != "" {
					if st, err := os.Stat(c.Profile); err != nil || !st.IsDir() {
						t.Errorf("profile dir not created: %v", err)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}

	if got, err := parseInts("1, 8,32,"); err != nil || fmt.Sprint(got) != "[1 8 32]" {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	if _, err := parseInts("1,x"); err == nil {
		t.Error("parseInts accepted x")
	}
}

// TestCLIRejectsBadFlags: exit code 2 and a message naming the problem,
// without starting anything.
func TestCLIRejectsBadFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-rounds", "0"}, {"-targets", "mcpgate-nosuch"}, {"-concurrency", "a"}, {"extra"},
		{"-principals", "-1"}, {"-principals", "x"}, {"-profile", filepath.Join(file, "prof")}, {"-profile", t.TempDir(), "-targets", "direct,proxy"}} {
		var out, errb strings.Builder
		if code := cliMain(args, &out, &errb); code != 2 || errb.Len() == 0 || out.Len() != 0 {
			t.Errorf("cliMain(%v) = %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}
