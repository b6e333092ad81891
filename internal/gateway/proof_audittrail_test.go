package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// stalledSink never finishes a write until its context ends: a disk that
// stopped answering.
type stalledSink struct{}

func (stalledSink) Write(ctx context.Context, _ *audit.Event) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stalledSink) Close() error { return nil }

// TestAuditStalledSinkDenies: a sink that does not answer within
// audit.write_timeout fails the record, and the call is refused with 503
// rather than forwarded or left hanging.
func TestAuditStalledSinkDenies(t *testing.T) {
	h := newHarness(t, harnessOptions{auditSink: stalledSink{}, configure: func(c *config.Config) {
		c.Audit.WriteTimeout = config.Duration(50 * time.Millisecond)
	}})
	before := h.up["docs"].count()
	start := time.Now()
	resp := h.do(rawReq{token: h.token("docs", "docs:read")})
	if resp.status != http.StatusServiceUnavailable || h.up["docs"].count() != before {
		t.Fatalf("status %d, upstream calls %d → %d: want 503 and no call", resp.status, before, h.up["docs"].count())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the request waited %s for a stalled sink", d)
	}
}

// TestAuditOnFailureAllow: with on_failure: allow the call goes ahead when
// its record cannot be written, and the loss is counted and logged.
func TestAuditOnFailureAllow(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Audit.OnFailure = "allow" }})
	h.audit.setFail(errors.New("audit disk full"))
	before := h.up["docs"].count()
	resp := h.do(rawReq{token: h.token("docs", "docs:read")})
	if resp.status != http.StatusOK || h.up["docs"].count() != before+1 {
		t.Fatalf("status %d: want the call forwarded", resp.status)
	}
	if h.gw.auditLost.Load() != 1 || !strings.Contains(h.logs.String(), "audit record LOST") {
		t.Errorf("lost records %d, logs %q: want the loss counted and logged", h.gw.auditLost.Load(), h.logs.String())
	}
}

// TestAuditCaptureArguments: arguments are not recorded by default; with
// capture_arguments they are, redacted by every detector even when the
// detector's action lets the value through to the upstream.
func TestAuditCaptureArguments(t *testing.T) {
	gh := fakeGitHubToken()
	args := `{"text":"use ` + gh + ` please"}`
	for _, capture := range []bool{false, true} {
		h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
			c.Audit.CaptureArguments = capture
			c.Redaction.Detectors = map[string]string{"github": "audit"}
		}})
		resp := h.do(rawReq{token: h.token("docs", "docs:read"), body: toolsCall(7, "search", args)})
		if resp.status != http.StatusOK {
			t.Fatalf("status %d", resp.status)
		}
		ev := h.recordsOf(t, resp.requestID(), 2)[0]
		switch {
		case !capture && ev.Arguments != nil:
			t.Errorf("arguments recorded without capture_arguments: %s", ev.Arguments)
		case capture && !strings.Contains(string(ev.Arguments), "[REDACTED:github]"):
			t.Errorf("captured arguments %s: want the token redacted", ev.Arguments)
		}
		if rec, _ := json.Marshal(h.audit.events()); strings.Contains(string(rec), gh) {
			t.Errorf("capture=%v: the token reached the audit trail", capture)
		}
		if out := h.recordsOf(t, resp.requestID(), 2)[1]; out.UpstreamMS <= 0 {
			t.Errorf("outcome upstream_ms = %v", out.UpstreamMS)
		}
	}
}

// TestAuditFileTrailVerifies runs traffic through the gateway with the real
// file sink, closes it, and verifies the trail: decision before outcome,
// signed through the shutdown checkpoint.
func TestAuditFileTrailVerifies(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "audit.jsonl")
	sink, err := audit.OpenFileSink(audit.FileConfig{Path: file, SigningKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{auditSink: sink})
	tok := h.token("docs", "docs:read")
	for range 20 {
		if resp := h.do(rawReq{token: tok}); resp.status != http.StatusOK {
			t.Fatalf("status %d", resp.status)
		}
	}
	h.do(rawReq{}) // a 401, recorded too
	h.srv.Close()
	if err := h.gw.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify([]string{file}, []ed25519.PublicKey{pub})
	if err != nil || !rep.OK() || rep.UnsignedTail != 0 || rep.Records < 41 {
		var b strings.Builder
		if rep != nil {
			rep.Write(&b)
		}
		t.Fatalf("verify: %v\n%s", err, b.String())
	}
}

// TestAuditFieldsBounded: a huge tool name is recorded bounded, with the
// digest of the whole.
func TestAuditFieldsBounded(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Routes[0].DefaultTool = config.DefaultRule{Allow: false} }})
	name := strings.Repeat("x", 5000)
	resp := h.do(rawReq{token: h.token("docs", "docs:read"), body: toolsCall(7, name, `{}`)})
	ev := h.recordsOf(t, resp.requestID(), 1)[0]
	if len(ev.Tool) > 600 || !strings.Contains(ev.Tool, "5000 bytes, sha256:") {
		t.Errorf("tool recorded as %d bytes: %.80q…", len(ev.Tool), ev.Tool)
	}
}
