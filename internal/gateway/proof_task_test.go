package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// taskUpstream answers the task methods itself (go-sdk upstreams do not
// implement tasks): a task-augmented tools/call creates task-<n>, tasks/get
// answers for any id, tasks/list lists every task it made plus a foreign
// one. Everything else goes to next.
func taskUpstream(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Task   json.RawMessage `json:"task"`
				TaskID string          `json:"taskId"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		answer := func(result string) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(m.ID)+`,"result":`+result+`}`)
		}
		switch {
		case m.Method == "tools/call" && m.Params.Task != nil:
			answer(`{"task":{"taskId":"task-` + itoa(int(n.Add(1))) + `","status":"working","ttl":60000}}`)
		case m.Method == "tasks/get" || m.Method == "tasks/cancel":
			answer(`{"taskId":` + string(mustJSON(m.Params.TaskID)) + `,"status":"working"}`)
		case m.Method == "tasks/list":
			var items []string
			for i := range n.Load() {
				items = append(items, `{"taskId":"task-`+itoa(int(i+1))+`","status":"working"}`)
			}
			items = append(items, `{"taskId":"task-foreign","status":"working"}`)
			answer(`{"tasks":[` + strings.Join(items, ",") + `],"nextCursor":"c2"}`)
		default:
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			next.ServeHTTP(w, r)
		}
	})
}

// TestProofTasks: a task is bound to the principal and route that created
// it; anyone else's tasks/get, tasks/result or tasks/cancel is refused
// without reaching the upstream, and tasks/list shows only one's own.
func TestProofTasks(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true, wrapUpstream: func(_ string, next http.Handler) http.Handler {
		return taskUpstream(next)
	}})
	alice := h.token("docs", "docs:read")
	resp := h.do(rawReq{token: alice, body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"text":"q"},"task":{"ttl":60000}}}`})
	var created struct {
		Task struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
	}
	if m := resp.rpc(t); resp.status != 200 || json.Unmarshal(m.Result, &created) != nil || created.Task.TaskID == "" {
		t.Fatalf("task-augmented call: %d %s", resp.status, resp.body)
	}
	task := created.Task.TaskID
	get := func(method, id string) string { return rpcRequest(7, method, `{"taskId":`+string(mustJSON(id))+`}`) }

	// The creator may use it.
	before := h.up["docs"].count()
	if resp := h.do(rawReq{token: alice, body: get("tasks/get", task)}); resp.status != 200 || resp.rpc(t).Error != nil {
		t.Errorf("creator's tasks/get: %d %s", resp.status, resp.body)
	}
	if h.up["docs"].count() != before+1 {
		t.Errorf("creator's tasks/get not forwarded")
	}

	bob := h.mint("docs", "bob", "agent-1", "docs:read")
	aliceOther := h.mint("docs", "alice", "agent-2", "docs:read")
	aliceMail := h.token("mail", "mail:read")
	unknown := rejectWant{status: 200, code: -32602, id: "7", decision: audit.Reject, reason: "unknown_task"}
	for _, tc := range []struct {
		name string
		rr   rawReq
	}{
		{"unknown task id", rawReq{token: alice, body: get("tasks/get", "task-999")}},
		{"bob's tasks/get", rawReq{token: bob, body: get("tasks/get", task)}},
		{"bob's tasks/result", rawReq{token: bob, body: get("tasks/result", task)}},
		{"bob's tasks/cancel", rawReq{token: bob, body: get("tasks/cancel", task)}},
		{"alice with another client", rawReq{token: aliceOther, body: get("tasks/get", task)}},
		{"alice on the other route", rawReq{route: "mail", token: aliceMail, body: get("tasks/get", task)}},
		{"a task another principal's list shows", rawReq{token: alice, body: get("tasks/get", "task-foreign")}},
	} {
		t.Run(tc.name, func(t *testing.T) { h.expectReject(t, tc.rr, unknown) })
	}

	// tasks/list: only one's own, the rest of the result kept.
	for _, tc := range []struct {
		name string
		tok  string
		want string
	}{
		{"alice", alice, `{"tasks":[{"taskId":"` + task + `","status":"working"}],"nextCursor":"c2"}`},
		{"bob", bob, `{"tasks":[],"nextCursor":"c2"}`},
	} {
		resp := h.do(rawReq{token: tc.tok, body: rpcRequest(7, "tasks/list", "")})
		m := resp.rpc(t)
		if resp.status != 200 || m.Error != nil {
			t.Fatalf("%s tasks/list: %d %s", tc.name, resp.status, resp.body)
		}
		var got, want any
		_ = json.Unmarshal(m.Result, &got)
		_ = json.Unmarshal([]byte(tc.want), &want)
		if b1, b2 := mustJSON(got), mustJSON(want); string(b1) != string(b2) {
			t.Errorf("%s tasks/list = %s, want %s", tc.name, m.Result, tc.want)
		}
	}
	for _, tok := range []string{alice, bob, aliceOther, aliceMail} {
		h.assertNoTokenLeak(tok)
	}
}
