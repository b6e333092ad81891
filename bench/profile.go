package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// minProfileTime is the shortest profiling run by default: a CPU profile
// samples at 100 Hz, so a shorter one says little.
const minProfileTime = 5 * time.Second

// ProfileFile is a profile the harness saved (-profile).
type ProfileFile struct {
	Target string `json:"target"`
	Kind   string `json:"kind"` // cpu or heap
	Path   string `json:"path"`
	Bytes  int    `json:"bytes"`
	Detail string `json:"detail"`
}

// isGateTarget reports whether the target named name is `mcpgate serve`.
func isGateTarget(name string) bool { return strings.HasPrefix(name, "mcpgate") }

// profileTime returns the length of the profiling run in whole seconds
// (the pprof endpoint takes seconds): ProfileTime, or max(Duration, 5s).
func (c *Config) profileTime() time.Duration {
	d := c.ProfileTime
	if d == 0 {
		d = max(c.Duration, minProfileTime)
	}
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// checkWritableDir creates dir if need be and checks a file can be
// created in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".bench-write-check-*")
	if err != nil {
		return err
	}
	return errors.Join(f.Close(), os.Remove(f.Name()))
}

// profileTarget runs one unmeasured load on the mcpgate target t at
// concurrency c (spread over env.principals(c) principals, like the
// measurements) while it fetches a CPU profile of d from mcpgate's admin
// listener, then a heap profile; it saves them in dir as
// <target>-cpu.pprof and <target>-heap.pprof. The load starts with the
// profile request and stops when the profile is answered, so the whole
// profile is under load. A failed request fails it.
func profileTarget(ctx context.Context, env *runEnv, t *target, c int, d time.Duration, dir string) ([]ProfileFile, error) {
	if t.adminSecret == "" {
		return nil, fmt.Errorf("%s: profiling is not configured", t.name)
	}
	toks, err := t.principalTokens(ctx, env.principals(c))
	if err != nil {
		return nil, err
	}
	lt := newLoadTargeter(t.endpoint, toks, env.ids)
	if toks != nil {
		defer func() { t.addSent(lt.perPrincipal()) }()
	}
	client := newClient(c)
	defer client.CloseIdleConnections()

	type fetched struct {
		body []byte
		err  error
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	cpuc := make(chan fetched, 1)
	secs := int(d / time.Second)
	go func() {
		b, err := t.fetchAdmin(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), d+30*time.Second)
		stopLoad()
		cpuc <- fetched{b, err}
	}()
	chk := &checker{want: searchResult(searchIn{Query: benchQuery, Workspace: benchWorkspace})}
	elapsed := attack(loadCtx, client, c, lt.target, d+30*time.Second, chk, nil)
	cpu := <-cpuc
	t.searches.Add(int64(chk.n))
	t.forwarded.Add(int64(chk.n))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cpu.err != nil {
		return nil, fmt.Errorf("%s: CPU profile: %w", t.name, cpu.err)
	}
	if err := chk.err(); err != nil {
		return nil, fmt.Errorf("%s profiling run at concurrency %d: %w", t.name, c, err)
	}
	if err := t.alive(); err != nil {
		return nil, err
	}
	heap, err := t.fetchAdmin(ctx, "/debug/pprof/heap", 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s: heap profile: %w", t.name, err)
	}
	load := fmt.Sprintf("%d requests in %.1fs at concurrency %d, %d principal(s)", chk.n, elapsed.Seconds(), c, max(len(toks), 1))
	var out []ProfileFile
	for _, p := range []struct {
		kind, detail string
		body         []byte
	}{
		{"cpu", fmt.Sprintf("CPU, %ds under load (%s, unmeasured)", secs, load), cpu.body},
		{"heap", "heap at the end of that run (alloc_* since the process started)", heap},
	} {
		if err := checkProfile(p.body); err != nil {
			return nil, fmt.Errorf("%s: %s profile: %w", t.name, p.kind, err)
		}
		path := filepath.Join(dir, t.name+"-"+p.kind+".pprof")
		if err := os.WriteFile(path, p.body, 0o644); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		out = append(out, ProfileFile{Target: t.name, Kind: p.kind, Path: path, Bytes: len(p.body), Detail: p.detail})
	}
	return out, nil
}

// fetchAdmin GETs path from t's admin listener with the admin secret and
// returns the body of a 200 answer.
func (t *target) fetchAdmin(ctx context.Context, path string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.adminURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, truncate(body, 200))
	}
	return body, nil
}

// checkProfile checks that b looks like a pprof profile: gzip-compressed,
// holding something.
func checkProfile(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not gzip-compressed: %w (%q)", err, truncate(b, 100))
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if n == 0 {
		return errors.New("an empty profile")
	}
	return nil
}
