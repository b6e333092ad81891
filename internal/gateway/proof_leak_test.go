package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// Credential-looking fixtures, built at run time from parts so that the
// repository holds nothing a secret scanner would flag.
func fakeGitHubToken() string { return "gh" + "p_" + randomAlnum(36) }
func fakeAWSKeyID() string    { return "AK" + "IA" + strings.ToUpper(randomAlnum(16)) }
func fakeSlackToken() string {
	return "xo" + "xb-" + randomDigits(12) + "-" + randomDigits(12) + "-" + randomAlnum(24)
}
func fakePrivateKey() string {
	b := make([]byte, 600)
	_, _ = rand.Read(b)
	enc := base64.StdEncoding.EncodeToString(b)
	var lines []string
	for len(enc) > 64 {
		lines, enc = append(lines, enc[:64]), enc[64:]
	}
	lines = append(lines, enc)
	return "-----BEGIN " + "PRIVATE KEY-----\n" + strings.Join(lines, "\n") + "\n-----END " + "PRIVATE KEY-----"
}

func randomAlnum(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '1' + b[i]%9
	}
	return string(b)
}

// planted answers tools/call at the docs upstream with whatever the test
// sets, leaving every other method to the real go-sdk server.
type planted struct {
	mu     sync.Mutex
	answer func(w http.ResponseWriter, id string)
}

func (p *planted) set(f func(w http.ResponseWriter, id string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = f
}

func (p *planted) wrap(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		f := p.answer
		p.mu.Unlock()
		if route != "docs" || f == nil || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(b, &m) != nil || m.Method != "tools/call" {
			next.ServeHTTP(w, r)
			return
		}
		f(w, string(m.ID))
	})
}

// sseChunks writes an SSE response in pieces, flushing after each, so the
// gateway sees an event split across reads.
func sseChunks(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, c := range chunks {
		io.WriteString(w, c)
		w.(http.Flusher).Flush()
	}
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// TestLeakPreventionInAnswers plants credentials in every part of an
// upstream's answer and checks that the client receives them redacted (or
// withheld, for a blocking detector) and that the audit record names the
// detector, never the value.
func TestLeakPreventionInAnswers(t *testing.T) {
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap, configure: func(c *config.Config) {
		c.Redaction.Detectors = map[string]string{"private_key": "block"}
	}})
	token := h.token("docs", "docs:read")
	for _, tc := range []struct {
		name     string
		secret   string
		answer   func(w http.ResponseWriter, id, secret string)
		marker   string // must appear in what the client gets
		blocked  bool   // the answer is replaced by an error for its id
		status   int    // expected HTTP status; 0 → 200
		detector string
	}{
		{"JSON text content", fakeGitHubToken(), func(w http.ResponseWriter, id, s string) {
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":"token: `+s+`"}]}}`)
		}, "[REDACTED:github]", false, 0, "github"},
		{"escaped in JSON", fakeGitHubToken(), func(w http.ResponseWriter, id, s string) {
			esc := `\u0067\u0068` + s[2:] // "gh" written as escapes
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":"`+esc+`"}]}}`)
		}, "[REDACTED:github]", false, 0, "github"},
		{"structuredContent", fakeAWSKeyID(), func(w http.ResponseWriter, id, s string) {
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[],"structuredContent":{"creds":{"id":"`+s+`"}}}}`)
		}, "[REDACTED:aws_access_key]", false, 0, "aws_access_key"},
		{"embedded resource", fakeSlackToken(), func(w http.ResponseWriter, id, s string) {
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"resource","resource":{"uri":"file:///x","text":"SLACK=`+s+`"}}]}}`)
		}, "[REDACTED:slack]", false, 0, "slack"},
		{"SSE event split across chunks", fakeGitHubToken(), func(w http.ResponseWriter, id, s string) {
			msg := `{"jsonrpc":"2.0","id":` + id + `,"result":{"content":[{"type":"text","text":"` + s + `"}]}}`
			i := strings.Index(msg, s) + 10
			sseChunks(w, "event: message\ndata: "+msg[:i], msg[i:i+5], msg[i+5:]+"\n\n")
		}, "[REDACTED:github]", false, 0, "github"},
		{"notification before the result", fakeGitHubToken(), func(w http.ResponseWriter, id, s string) {
			sseChunks(w, `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"`+s+`"}}`+"\n\n",
				`data: {"jsonrpc":"2.0","id":`+id+`,"result":{"content":[]}}`+"\n\n")
		}, "[REDACTED:github]", false, 0, "github"},
		{"error message carrying the client's token", token, func(w http.ResponseWriter, id, s string) {
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"error":{"code":-32000,"message":"bad token `+s+`"}}`)
		}, "[REDACTED:live_credential]", false, 0, "live_credential"},
		{"plain-text error page", fakeSlackToken(), func(w http.ResponseWriter, id, s string) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "crash dump: SLACK_TOKEN="+s)
		}, "[REDACTED:slack]", false, http.StatusInternalServerError, "slack"},
		{"blocking detector withholds the result", fakePrivateKey(), func(w http.ResponseWriter, id, s string) {
			b, _ := json.Marshal(s)
			jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":`+string(b)+`}]}}`)
		}, "withheld this result", true, 0, "private_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.set(func(w http.ResponseWriter, id string) { tc.answer(w, id, tc.secret) })
			defer p.set(nil)
			resp := h.do(rawReq{token: token})
			want := tc.status
			if want == 0 {
				want = http.StatusOK
			}
			if resp.status != want {
				t.Fatalf("status %d, want %d: %s", resp.status, want, resp.body)
			}
			secretPart := tc.secret
			if len(secretPart) > 40 {
				secretPart = secretPart[len(secretPart)-40:] // a PEM's tail
			}
			if bytes.Contains(resp.body, []byte(secretPart)) || bytes.Contains(resp.body, []byte(tc.secret[2:])) {
				t.Fatalf("the secret reached the client: %s", resp.body)
			}
			if !bytes.Contains(resp.body, []byte(tc.marker)) {
				t.Fatalf("the answer lacks %q: %s", tc.marker, resp.body)
			}
			if tc.blocked {
				var m struct {
					ID    json.RawMessage    `json:"id"`
					Error struct{ Code int } `json:"error"`
				}
				if err := json.Unmarshal(resp.messages()[0], &m); err != nil || string(m.ID) != "7" || m.Error.Code != codeDenied {
					t.Fatalf("withheld answer %s: want a JSON-RPC error %d for id 7", resp.body, codeDenied)
				}
			}
			evs := h.recordsOf(t, resp.requestID(), 2)
			out := evs[len(evs)-1]
			if out.Kind != audit.KindOutcome || !hasFinding(out.Findings, tc.detector, "result") {
				t.Errorf("outcome record findings %+v, want %s in the result", out.Findings, tc.detector)
			}
			rec, _ := json.Marshal(evs)
			if bytes.Contains(rec, []byte(secretPart)) {
				t.Error("the secret appears in an audit record")
			}
			if strings.Contains(h.logs.String(), secretPart) {
				t.Error("the secret appears in the logs")
			}
		})
	}
}

func hasFinding(fs []audit.Finding, detector, where string) bool {
	for _, f := range fs {
		if f.Detector == detector && f.Where == where && f.Count > 0 {
			return true
		}
	}
	return false
}

// TestLeakPreventionHeaders: an upstream that echoes the credential it got
// (here the client's token, as a broken upstream would) in response
// headers does not hand it to the client.
func TestLeakPreventionHeaders(t *testing.T) {
	var token string
	h := newHarness(t, harnessOptions{wrapUpstream: func(route string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Debug-Auth", "Bearer "+token)
			w.Header().Set("X-Debug-Key", fakeGitHubToken())
			next.ServeHTTP(w, r)
		})
	}})
	token = h.token("docs", "docs:read")
	resp := h.do(rawReq{token: token, version: "-", body: rpcRequest(1, "initialize",
		`{"protocolVersion":"`+v1125+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}`)})
	if resp.status != http.StatusOK {
		t.Fatalf("initialize: %d %s", resp.status, resp.body)
	}
	if v := resp.header.Get("X-Debug-Auth"); strings.Contains(v, token) || !strings.Contains(v, "[REDACTED:live_credential]") {
		t.Errorf("X-Debug-Auth = %q: want the token redacted", v)
	}
	if v := resp.header.Get("X-Debug-Key"); !strings.Contains(v, "[REDACTED:github]") {
		t.Errorf("X-Debug-Key = %q: want the detector to redact it", v)
	}
}

// TestLeakPreventionInArguments: credentials the model puts in tool
// arguments are redacted before the upstream sees them, or the call is
// refused (upstream not called) when the detector blocks; the client's own
// token never reaches the upstream, even inside arguments.
func TestLeakPreventionInArguments(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.Redaction.Detectors = map[string]string{"aws_access_key": "block", "slack": "audit"}
	}})
	token := h.token("docs", "docs:read")
	gh, aws, slack := fakeGitHubToken(), fakeAWSKeyID(), fakeSlackToken()
	for _, tc := range []struct {
		name      string
		text      string
		forwarded bool
		want      string // in the forwarded body; "" when refused
		detector  string
		action    string
	}{
		{"redacted", "use " + gh, true, "[REDACTED:github]", "github", "redact"},
		{"the client's own token", "my token is " + token, true, "[REDACTED:live_credential]", "live_credential", "redact"},
		{"blocked", "key " + aws, false, "", "aws_access_key", "block"},
		{"audit only", "slack " + slack, true, slack, "slack", "audit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.up["docs"].count()
			args, _ := json.Marshal(map[string]string{"text": tc.text})
			resp := h.do(rawReq{token: token, body: toolsCall(7, "search", string(args))})
			reqs := h.up["docs"].requests()[before:]
			if !tc.forwarded {
				if len(reqs) != 0 {
					t.Fatalf("a blocked call reached the upstream")
				}
				m := resp.rpc(t)
				if m.Error == nil || m.Error.Code != codeDenied || !strings.Contains(m.Error.Message, tc.detector) {
					t.Fatalf("want a denial naming %s, got %s", tc.detector, resp.body)
				}
				if strings.Contains(string(resp.body), aws) {
					t.Error("the refusal echoes the credential")
				}
			} else {
				if len(reqs) != 1 {
					t.Fatalf("upstream requests: %d, want 1", len(reqs))
				}
				if !bytes.Contains(reqs[0].Body, []byte(tc.want)) {
					t.Errorf("forwarded body %s lacks %q", reqs[0].Body, tc.want)
				}
				if tc.action == "redact" && bytes.Contains(reqs[0].Body, []byte(strings.TrimPrefix(tc.text, "use "))) {
					t.Errorf("the credential reached the upstream: %s", reqs[0].Body)
				}
			}
			evs := h.recordsOf(t, resp.requestID(), 1)
			if !hasFinding(evs[0].Findings, tc.detector, "arguments") {
				t.Errorf("decision record findings %+v, want %s in the arguments", evs[0].Findings, tc.detector)
			}
		})
	}
	h.assertNoTokenLeak(token)
}

// TestUpstream401NotRelayed: an upstream's 401 (with its own challenge)
// becomes a 502 from mcpgate that says what happened; the client is not
// told to re-authorize.
func TestUpstream401NotRelayed(t *testing.T) {
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap})
	p.set(func(w http.ResponseWriter, id string) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="https://upstream.example/.well-known/oauth-protected-resource"`)
		jsonAnswer(w, http.StatusUnauthorized, `{"error":"invalid_token"}`)
	})
	resp := h.do(rawReq{token: h.token("docs", "docs:read")})
	if resp.status != http.StatusBadGateway || resp.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, WWW-Authenticate %q: want 502 without a challenge", resp.status, resp.header.Get("WWW-Authenticate"))
	}
	if !strings.Contains(string(resp.body), "refused the credential mcpgate presented") {
		t.Errorf("body %s does not say the upstream refused mcpgate's credential", resp.body)
	}
}

// TestLeakScanCap: an answer larger than redaction.max_scan_bytes is
// withheld, never passed unscanned.
func TestLeakScanCap(t *testing.T) {
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap, configure: func(c *config.Config) {
		c.Redaction.MaxScanBytes = 1024
	}})
	p.set(func(w http.ResponseWriter, id string) {
		jsonAnswer(w, 200, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":"`+strings.Repeat("a", 4096)+`"}]}}`)
	})
	resp := h.do(rawReq{token: h.token("docs", "docs:read")})
	if bytes.Contains(resp.body, []byte(strings.Repeat("a", 100))) {
		t.Fatalf("the unscanned answer reached the client (%d bytes)", len(resp.body))
	}
	if m := resp.rpc(t); m.Error == nil {
		t.Fatalf("want an error, got %s", resp.body)
	}
}

// TestLeakPreventionRefusedRequestRecord: a request refused because of a
// credential in its names keeps that credential out of its audit record.
func TestLeakPreventionRefusedRequestRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) {
		c.Redaction.Detectors = map[string]string{"github": "block"}
	}})
	gh := fakeGitHubToken()
	resp := h.do(rawReq{token: h.token("docs", "docs:read"), body: toolsCall(7, gh, `{}`)})
	if m := resp.rpc(t); m.Error == nil || m.Error.Code != codeDenied {
		t.Fatalf("want a denial, got %s", resp.body)
	}
	rec, _ := json.Marshal(h.recordsOf(t, resp.requestID(), 1))
	if bytes.Contains(rec, []byte(gh)) {
		t.Fatalf("the credential in the tool name reached the audit record: %s", rec)
	}
}

// TestLeakPreventionRequestHeaders: forwarded request headers are scanned
// like the body (Mcp-Param-* mirrors arguments).
func TestLeakPreventionRequestHeaders(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	token := h.token("docs", "docs:read")
	gh := fakeGitHubToken()
	before := h.up["docs"].count()
	resp := h.do(rawReq{token: token, header: http.Header{"Traceparent": {"00-" + gh}, "Baggage": {"auth=" + token}}})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	reqs := h.up["docs"].requests()[before:]
	if len(reqs) != 1 {
		t.Fatalf("upstream requests: %d", len(reqs))
	}
	for k, vs := range reqs[0].Header {
		for _, v := range vs {
			if strings.Contains(v, gh) || strings.Contains(v, token) {
				t.Errorf("header %s reached the upstream with a credential", k)
			}
		}
	}
	if !strings.Contains(reqs[0].Header.Get("Traceparent"), "[REDACTED:github]") {
		t.Errorf("Traceparent = %q, want the token redacted", reqs[0].Header.Get("Traceparent"))
	}
}

// TestLeakPreventionEventFields: an SSE id, event name or comment that
// carries a credential never reaches the client.
func TestLeakPreventionEventFields(t *testing.T) {
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap})
	token := h.token("docs", "docs:read")
	gh := fakeGitHubToken()
	p.set(func(w http.ResponseWriter, id string) {
		sseChunks(w, ": "+gh+"\n\n", "id: "+token+"\nevent: "+gh+"\ndata: {\"jsonrpc\":\"2.0\",\"id\":"+id+",\"result\":{\"content\":[]}}\n\n")
	})
	resp := h.do(rawReq{token: token})
	if resp.status != http.StatusOK || len(resp.messages()) != 1 {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if bytes.Contains(resp.body, []byte(gh)) || bytes.Contains(resp.body, []byte(token)) {
		t.Fatalf("a credential in an event field reached the client: %s", resp.body)
	}
}

// TestUpstreamRedirectNotRelayed: an upstream redirect would send the
// client elsewhere with its token; it becomes a 502.
func TestUpstreamRedirectNotRelayed(t *testing.T) {
	p := &planted{}
	h := newHarness(t, harnessOptions{wrapUpstream: p.wrap})
	p.set(func(w http.ResponseWriter, id string) {
		http.Redirect(w, &http.Request{}, "https://evil.example/collect", http.StatusTemporaryRedirect)
	})
	resp := h.do(rawReq{token: h.token("docs", "docs:read")})
	if resp.status != http.StatusBadGateway || resp.header.Get("Location") != "" {
		t.Fatalf("status %d, Location %q: want 502 without Location", resp.status, resp.header.Get("Location"))
	}
}
