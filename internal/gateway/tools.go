package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/toolpin"
)

// This file keeps what mcpgate learns from the tool lists upstreams
// return: each tool's annotations (which seed its sequence-policy labels)
// and its definition's fingerprint (tool pinning, the "rug pull" defence).

// maxLearntTools bounds the annotation labels remembered per route.
const maxLearntTools = 10000

// toolBook is one route's knowledge of its upstream's tools.
type toolBook struct {
	mu     sync.RWMutex        // guards labels
	labels map[string][]string // tool → labels seeded from its annotations
}

func (b *toolBook) learnt(tool string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.labels[tool]
}

func (b *toolBook) learn(tool string, labels []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.labels == nil {
		b.labels = map[string][]string{}
	}
	if _, ok := b.labels[tool]; !ok && len(b.labels) >= maxLearntTools {
		return
	}
	b.labels[tool] = labels
}

// toolLabels returns the labels of a tool on this route: the configured
// ones when there are any, else those seeded from its annotations.
func (rt *route) toolLabels(tool string) []string {
	if l, ok := rt.labels[tool]; ok {
		return l
	}
	if rt.ignoreAnnotations {
		return nil
	}
	return rt.tools.learnt(tool)
}

// observeTools learns from one tools/list result of the upstream, before
// it is filtered: annotation labels, and pins. It returns the names of
// tools to hide because their definition changed and the route blocks
// changed tools.
func (x *exchange) observeTools(result []byte) (hide map[string]bool, err error) {
	rt := x.rt
	list, ok := jsonrpc.Lookup(result, "tools")
	if !ok || len(list) == 0 || list[0] != '[' {
		return nil, nil // policy.Filter fails closed on a malformed list
	}
	var defs [][]byte
	for raw := range jsonrpc.Elements(list) {
		defs = append(defs, raw)
		nameRaw, _ := jsonrpc.Lookup(raw, "name")
		name, err := jsonrpc.DecodeString(nameRaw)
		if err != nil || name == "" {
			continue
		}
		if !rt.ignoreAnnotations {
			rt.tools.learn(name, annotationLabels(raw))
		}
	}
	if rt.pinMode == toolpin.ModeOff {
		return nil, nil
	}
	changes, err := rt.g.pins.Observe(rt.name, defs)
	if err != nil && !errors.Is(err, toolpin.ErrPersist) {
		if rt.pinMode == toolpin.ModeBlock {
			return nil, fmt.Errorf("tool pinning: %w", err)
		}
		rt.g.log.LogAttrs(x.r.Context(), slog.LevelWarn, "tool pinning could not read a tool list",
			slog.String("route", rt.name), slog.String("error", err.Error()))
		return nil, nil
	}
	if err != nil {
		rt.g.log.LogAttrs(x.r.Context(), slog.LevelError, "tool pins could not be saved",
			slog.String("route", rt.name), slog.String("error", err.Error()))
		if rt.pinMode == toolpin.ModeBlock {
			return nil, fmt.Errorf("tool pinning: %w", err)
		}
	}
	for _, c := range changes {
		if c.FirstSeen || c.Repeated {
			continue
		}
		x.alertToolChanged(c)
	}
	if rt.pinMode != toolpin.ModeBlock {
		return nil, nil
	}
	for _, c := range changes {
		if rt.g.pins.Status(rt.name, c.Tool) == toolpin.Changed {
			if hide == nil {
				hide = map[string]bool{}
			}
			hide[c.Tool] = true
		}
	}
	return hide, nil
}

// alertToolChanged records that an upstream changed a pinned tool.
func (x *exchange) alertToolChanged(c toolpin.Change) {
	ev := x.event(audit.KindAlert)
	ev.Decision, ev.Reason, ev.Rule, ev.Tool = audit.Alert, "tool_definition_changed", "pin", c.Tool
	ev.Method = "tools/list"
	if err := x.rt.g.writeAudit(context.WithoutCancel(x.r.Context()), ev); err != nil {
		x.rt.g.log.LogAttrs(x.r.Context(), slog.LevelError, "audit write failed for an alert", slog.String("error", err.Error()))
	}
	x.rt.g.log.LogAttrs(x.r.Context(), slog.LevelWarn, "upstream tool definition changed since it was pinned",
		slog.String("route", x.rt.name), slog.String("tool", c.Tool), slog.String("pinned", c.Old), slog.String("now", c.New))
}

// annotationLabels reads a tool definition's annotations.
func annotationLabels(tool []byte) []string {
	ann, ok := jsonrpc.Lookup(tool, "annotations")
	if !ok || len(ann) == 0 || ann[0] != '{' {
		return nil
	}
	hint := func(name string) *bool {
		v, ok := jsonrpc.Lookup(ann, name)
		if !ok {
			return nil
		}
		switch string(v) {
		case "true":
			t := true
			return &t
		case "false":
			f := false
			return &f
		}
		return nil
	}
	return policy.AnnotationLabels(hint("readOnlyHint"), hint("destructiveHint"), hint("openWorldHint"))
}

// dropTools removes the named tools from a tools/list result.
func dropTools(result []byte, hide map[string]bool) ([]byte, int) {
	if len(hide) == 0 {
		return result, 0
	}
	return keepItems(result, "tools", func(item []byte) bool {
		nameRaw, _ := jsonrpc.Lookup(item, "name")
		name, err := jsonrpc.DecodeString(nameRaw)
		return err != nil || !hide[name]
	})
}

// keepItems rebuilds result with only the elements of its array member key
// that keep accepts, every other member unchanged. It returns result itself
// when nothing is removed.
func keepItems(result []byte, key string, keep func(item []byte) bool) ([]byte, int) {
	list, ok := jsonrpc.Lookup(result, key)
	if !ok || len(list) == 0 || list[0] != '[' {
		return result, 0
	}
	var kept []string
	removed := 0
	for raw := range jsonrpc.Elements(list) {
		if keep(raw) {
			kept = append(kept, string(raw))
		} else {
			removed++
		}
	}
	if removed == 0 {
		return result, 0
	}
	var b strings.Builder
	b.WriteString("{")
	b.Write(mustJSON(key))
	b.WriteString(":[")
	b.WriteString(strings.Join(kept, ","))
	b.WriteString("]")
	for k, v := range jsonrpc.Members(result) {
		if k != key {
			b.WriteString(",")
			b.Write(mustJSON(k))
			b.WriteString(":")
			b.Write(v)
		}
	}
	b.WriteString("}")
	return []byte(b.String()), removed
}

// watchPins re-reads the pins file when it changes (an operator approved a
// tool with `mcpgate pins approve`).
func (g *Gateway) watchPins(ctx context.Context) {
	g.watchFile(ctx, g.cfg.ToolPinsFile, g.pins.Reload, "tool pins file could not be reloaded; keeping the last good pins")
}

// watchRevocations re-reads the revocations file when another process
// (a second mcpgate on the host) changed it; new revocations also end the
// open streams they cover.
func (g *Gateway) watchRevocations(ctx context.Context) {
	g.watchFile(ctx, g.cfg.Revocation.File, g.revoked.Reload, "revocations file could not be reloaded; keeping the last good list")
}

// watchFile calls reload whenever path's modification time changes,
// checking every two seconds, until ctx is done.
func (g *Gateway) watchFile(ctx context.Context, path string, reload func() error, failure string) {
	if path == "" {
		return
	}
	var last time.Time
	if fi, err := os.Stat(path); err == nil {
		last = fi.ModTime()
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil || fi.ModTime().Equal(last) {
			continue
		}
		last = fi.ModTime()
		if err := reload(); err != nil {
			g.log.Error(failure, slog.String("error", err.Error()))
		}
	}
}
