package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The measured call: tools/call search with these arguments.
const (
	benchWorkspace = "bench"
	benchQuery     = "quarterly plan"
)

// sampleEvery: the body of every sampleEvery-th request (by JSON-RPC id)
// is decoded and checked in full; every other body is checked to carry a
// result with its own id, by a byte search.
const sampleEvery = 100

// searchBody returns the JSON-RPC request of the measured call with id.
func searchBody(id int64) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"tools/call","params":{"name":"search","arguments":{"query":"`+benchQuery+`","workspace":"`+benchWorkspace+`"}}}`...)
	return b
}

// loadTargeter generates the measured call: a new JSON-RPC id from ids
// for every request, and the principals' tokens round-robin. The id also
// goes into the URL's fragment, which HTTP clients never send: vegeta
// reports each result's URL, which is how a response is matched to its
// request's id.
type loadTargeter struct {
	endpoint string
	ids      *atomic.Int64
	hdrs     []http.Header // one per principal (one without a token when the target takes none)
	next     atomic.Uint64 // requests generated; request k goes as principal k mod len(hdrs)
}

// newLoadTargeter returns the targeter of the measured call to endpoint
// with tokens round-robin (none: no Authorization header).
func newLoadTargeter(endpoint string, tokens []string, ids *atomic.Int64) *loadTargeter {
	if len(tokens) == 0 {
		tokens = []string{""}
	}
	lt := &loadTargeter{endpoint: endpoint, ids: ids, hdrs: make([]http.Header, len(tokens))}
	for i, tok := range tokens {
		lt.hdrs[i] = http.Header{}
		setHeaders(lt.hdrs[i], tok) // vegeta copies the headers into each request
	}
	return lt
}

// target is the vegeta.Targeter; it is called by every worker at once.
func (lt *loadTargeter) target(t *vegeta.Target) error {
	k := lt.next.Add(1) - 1
	id := lt.ids.Add(1)
	t.Method = http.MethodPost
	t.URL = lt.endpoint + "#" + strconv.FormatInt(id, 10)
	t.Body = searchBody(id)
	t.Header = lt.hdrs[k%uint64(len(lt.hdrs))]
	return nil
}

// perPrincipal returns the number of requests generated as each principal.
func (lt *loadTargeter) perPrincipal() []int64 {
	n, p := lt.next.Load(), uint64(len(lt.hdrs))
	out := make([]int64, p)
	for i := range out {
		out[i] = int64(n / p)
		if uint64(i) < n%p {
			out[i]++
		}
	}
	return out
}

// fragmentID returns the id in a result URL's fragment.
func fragmentID(u string) (int64, bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, false
	}
	id, err := strconv.ParseInt(u[i+1:], 10, 64)
	return id, err == nil
}

// containsID reports whether body holds the member "id":<id> (compact
// JSON, as the go-sdk and mcpgate write it), not followed by a digit.
func containsID(body []byte, id int64) bool {
	var buf [32]byte
	needle := strconv.AppendInt(append(buf[:0], `"id":`...), id, 10)
	for off := 0; ; {
		i := bytes.Index(body[off:], needle)
		if i < 0 {
			return false
		}
		end := off + i + len(needle)
		if end == len(body) || body[end] < '0' || body[end] > '9' {
			return true
		}
		off = end
	}
}

// checker checks every result of a load.
type checker struct {
	want     string // the text of a search result
	n        int
	non200   int // transport errors included
	rpcError int // JSON-RPC error answers
	mismatch int // not a result for the request's id, or a wrong sampled body
	sampled  int
	examples []string
}

func (c *checker) failed() int { return c.non200 + c.rpcError + c.mismatch }

func (c *checker) example(format string, args ...any) {
	if len(c.examples) < 5 {
		c.examples = append(c.examples, fmt.Sprintf(format, args...))
	}
}

// check checks one result.
func (c *checker) check(r *vegeta.Result) {
	c.n++
	id, ok := fragmentID(r.URL)
	switch {
	case !ok:
		c.mismatch++
		c.example("a result without an id in its URL %q", r.URL)
	case r.Error != "" || r.Code != http.StatusOK:
		c.non200++
		c.example("id %d: HTTP %d %s: %s", id, r.Code, r.Error, truncate(r.Body, 200))
	case !bytes.Contains(r.Body, []byte(`"result":`)):
		if bytes.Contains(r.Body, []byte(`"error":`)) {
			c.rpcError++
		} else {
			c.mismatch++
		}
		c.example("id %d: not a result: %s", id, truncate(r.Body, 300))
	case !containsID(r.Body, id):
		c.mismatch++
		c.example("id %d: the answer carries another id: %s", id, truncate(r.Body, 300))
	case id%sampleEvery == 0:
		c.sampled++
		text, err := rpcResultText(r.Body, id)
		if err != nil || text != c.want {
			c.mismatch++
			c.example("id %d (sampled): %v, text %q, want %q", id, err, text, c.want)
		}
	}
}

// err returns an error describing the failures, nil if there were none.
func (c *checker) err() error {
	if c.failed() == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d requests failed (non-200 or transport: %d, JSON-RPC errors: %d, wrong or mismatched answers: %d); first ones:\n  %s",
		c.failed(), c.n, c.non200, c.rpcError, c.mismatch, strings.Join(c.examples, "\n  "))
}

// newClient returns the load's HTTP client: keep-alive, HTTP/1.1, exactly
// c connections to the target.
func newClient(c int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: c,
			MaxConnsPerHost:     c,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// newAttacker returns a closed-loop attacker: c workers, never more, on
// the shared client (so warm-up connections carry over to the measurement).
func newAttacker(client *http.Client, c int) *vegeta.Attacker {
	return vegeta.NewAttacker(
		vegeta.Client(client), // first: the options below adjust its transport
		vegeta.Workers(uint64(c)),
		vegeta.MaxWorkers(uint64(c)),
		vegeta.KeepAlive(true),
		vegeta.Connections(c),
		vegeta.MaxConnections(c),
		vegeta.HTTP2(false),
	)
}

// maxSpeed is the pacer of a closed loop: no pacing, each worker sends its
// next request as soon as its previous one is answered.
func maxSpeed() vegeta.Rate { return vegeta.Rate{Freq: 0, Per: time.Second} }

// loadResult is one measurement of one target at one concurrency.
type loadResult struct {
	requests    int
	elapsed     time.Duration
	latencies   []time.Duration // sorted
	hasFront    bool            // a proxying process is in front of the upstream
	cpuFront    time.Duration
	cpuUpstream time.Duration
	cpuClient   time.Duration // the harness itself (load generator)
	warmupReqs  int
	sampled     int
	principals  int // 0: no token
}

// attack runs one attack and checks every result; it stops early when
// ctx ends.
func attack(ctx context.Context, client *http.Client, c int, tr vegeta.Targeter, d time.Duration, chk *checker, lat *[]time.Duration) time.Duration {
	a := newAttacker(client, c)
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()
	start := time.Now()
	for r := range a.Attack(tr, maxSpeed(), d, "") {
		chk.check(r)
		if lat != nil {
			*lat = append(*lat, r.Latency)
		}
	}
	return time.Since(start)
}

// measure warms t up for warmup, then measures it for d at concurrency c,
// spread over env.principals(c) principals when t takes a token. Any
// failed request fails the measurement.
func measure(ctx context.Context, env *runEnv, t *target, c int, warmup, d time.Duration) (*loadResult, error) {
	toks, err := t.principalTokens(ctx, env.principals(c))
	if err != nil {
		return nil, err
	}
	lt := newLoadTargeter(t.endpoint, toks, env.ids)
	if toks != nil {
		// Every generated request is answered or fails the run: counted
		// once the attacks are over, whatever happens.
		defer func() { t.addSent(lt.perPrincipal()) }()
	}
	tr := lt.target
	client := newClient(c)
	defer client.CloseIdleConnections()
	want := searchResult(searchIn{Query: benchQuery, Workspace: benchWorkspace})

	res := &loadResult{principals: len(toks)}
	if warmup > 0 {
		wchk := &checker{want: want}
		attack(ctx, client, c, tr, warmup, wchk, nil)
		if err := wchk.err(); err != nil {
			return nil, fmt.Errorf("%s warm-up at concurrency %d: %w", t.name, c, err)
		}
		res.warmupReqs = wchk.n
		t.searches.Add(int64(wchk.n))
		t.forwarded.Add(int64(wchk.n))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	procs := append([]*process{t.front, t.upstream}, t.extra...)
	before, err := readCPUs(procs)
	if err != nil {
		return nil, err
	}
	self0, err := readCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	chk := &checker{want: want}
	lat := make([]time.Duration, 0, 1<<14)
	res.elapsed = attack(ctx, client, c, tr, d, chk, &lat)
	after, err := readCPUs(procs)
	if err != nil {
		return nil, err
	}
	self1, err := readCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	t.searches.Add(int64(chk.n))
	t.forwarded.Add(int64(chk.n))
	if err := chk.err(); err != nil {
		return nil, fmt.Errorf("%s at concurrency %d: %w", t.name, c, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if chk.n == 0 {
		return nil, fmt.Errorf("%s at concurrency %d: no request completed", t.name, c)
	}
	if err := t.alive(); err != nil {
		return nil, err
	}
	slices.Sort(lat)
	res.requests, res.latencies, res.sampled = chk.n, lat, chk.sampled
	hz := env.hz
	if t.front != nil {
		res.hasFront = true
		front := after[0].Total() - before[0].Total()
		for i := range t.extra {
			front += after[2+i].Total() - before[2+i].Total()
		}
		res.cpuFront = ticksToDuration(front, hz)
	}
	res.cpuUpstream = ticksToDuration(after[1].Total()-before[1].Total(), hz)
	res.cpuClient = ticksToDuration(self1.Total()-self0.Total(), hz)
	return res, nil
}

// readCPUs reads the CPU ticks of each process (zero for nil).
func readCPUs(ps []*process) ([]cpuTicks, error) {
	out := make([]cpuTicks, len(ps))
	for i, p := range ps {
		if p == nil {
			continue
		}
		c, err := readCPU(p.pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[i] = c
	}
	return out, nil
}
