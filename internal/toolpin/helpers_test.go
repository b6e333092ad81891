package toolpin

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// tool builds a definition with a description.
func tool(name, description string) []byte {
	b, err := json.Marshal(map[string]any{
		"name":        name,
		"description": description,
		"inputSchema": map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func fp(t testing.TB, def []byte) string {
	t.Helper()
	f, err := Fingerprint(def)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPins(t testing.TB, cfg Config) *Pins {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func observe(t testing.TB, p *Pins, route string, tools ...[]byte) []Change {
	t.Helper()
	ch, err := p.Observe(route, tools)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return ch
}

// indent returns def re-spelt with whitespace.
func indent(t testing.TB, def []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, def, " ", "\t"); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
