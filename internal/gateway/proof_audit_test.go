package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/config"
)

// TestProofAuditOrder: the allow decision is recorded before the upstream
// receives the call, and the outcome after it answered.
func TestProofAuditOrder(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", tok)
	for _, rr := range []rawReq{
		{token: tok, session: sid},
		{token: tok, session: sid, body: rpcRequest(8, "tools/list", "")},
		{method: http.MethodDelete, token: tok, session: sid},
	} {
		nUp := h.up["docs"].count()
		resp := h.do(rr)
		if resp.status/100 != 2 {
			t.Fatalf("%s: %d %s", rr.method, resp.status, resp.body)
		}
		reqs := h.up["docs"].requests()
		if len(reqs) != nUp+1 {
			t.Fatalf("upstream received %d requests, want 1", len(reqs)-nUp)
		}
		arrived := reqs[nUp].Seq
		h.recordsOf(t, resp.requestID(), 2)
		var decision, outcome int64
		for i, e := range h.audit.events() {
			if e.RequestID != resp.requestID() {
				continue
			}
			switch e.Kind {
			case audit.KindDecision:
				decision = h.audit.seqOf(i)
			case audit.KindOutcome:
				outcome = h.audit.seqOf(i)
			}
		}
		if decision == 0 || outcome == 0 || !(decision < arrived && arrived < outcome) {
			t.Errorf("%s: order decision=%d upstream=%d outcome=%d, want decision < upstream < outcome",
				rr.method, decision, arrived, outcome)
		}
	}
}

// TestProofAuditRecords: a forwarded call has a decision and an outcome
// record with who, what, status and latency, and the token's fingerprint,
// never the token.
func TestProofAuditRecords(t *testing.T) {
	h := newHarness(t, harnessOptions{stateless: true})
	tok := h.token("docs", "docs:read document:read:roadmap")
	args := `{"project":"roadmap"}`
	resp := h.do(rawReq{token: tok, body: toolsCall(7, "read_document", args)})
	if resp.status != 200 {
		t.Fatalf("call: %d %s", resp.status, resp.body)
	}
	evs := h.recordsOf(t, resp.requestID(), 2)
	if len(evs) != 2 {
		t.Fatalf("records = %+v, want a decision and an outcome", evs)
	}
	sum := sha256.Sum256([]byte(args))
	for i, e := range evs {
		if e.Token != tokenFingerprint(tok) || e.Subject != "alice" || e.ClientID != "agent-1" || e.Issuer != h.iss.URL() ||
			e.Route != "docs" || e.Method != "tools/call" || e.Tool != "read_document" || e.RPCID != "7" ||
			e.ArgsDigest != hex.EncodeToString(sum[:]) || e.HTTPMethod != "POST" || e.ProtocolVersion != v1125 {
			t.Errorf("record %d lacks who/what: %+v", i, e)
		}
	}
	if d := evs[0]; d.Kind != audit.KindDecision || d.Decision != audit.Allow || d.Rule != "tool:read_document" {
		t.Errorf("decision record = %+v", d)
	}
	if o := evs[1]; o.Kind != audit.KindOutcome || o.Decision != audit.Forward || o.Status != 200 || o.UpstreamStatus != 200 ||
		o.LatencyMS <= 0 || o.Bytes <= 0 || o.Reason != "" {
		t.Errorf("outcome record = %+v", o)
	}
	// A refused request with a valid token carries its fingerprint too.
	resp = h.do(rawReq{token: tok, body: toolsCall(7, "update_document", `{"text":"x"}`)})
	if evs := h.eventsFor(resp.requestID()); len(evs) != 1 || evs[0].Token != tokenFingerprint(tok) ||
		!strings.Contains(strings.Join(evs[0].RequiredScopes, " "), "docs:write") {
		t.Errorf("step-up record = %+v", evs)
	}
	h.assertNoTokenLeak(tok)
}

// TestProofAuditFailure: a decision that cannot be recorded is not
// carried out — 503, nothing forwarded, no slot leaked.
func TestProofAuditFailure(t *testing.T) {
	h := newHarness(t, harnessOptions{configure: func(c *config.Config) { c.Limits.MaxSessionsPerPrincipal = 1 }})
	tok := h.token("docs", "docs:read")
	sid := h.initSession(t, "docs", tok)
	if resp := h.do(rawReq{method: http.MethodDelete, token: tok, session: sid}); resp.status/100 != 2 {
		t.Fatalf("DELETE: %d", resp.status)
	}
	h.audit.setFail(errors.New("audit disk full"))
	initBody := rpcRequest(1, "initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}`)
	for _, tc := range []struct {
		name string
		rr   rawReq
		id   string
	}{
		{"tools/call", rawReq{token: tok}, "7"},
		{"initialize", rawReq{token: tok, version: "-", body: initBody}, "1"},
		{"initialize again (the slot was released)", rawReq{token: tok, version: "-", body: initBody}, "1"},
		{"GET stream", rawReq{method: http.MethodGet, token: tok}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.upstreamCounts()
			resp := h.do(tc.rr)
			h.checkReject(t, "docs", resp, rejectWant{status: 503, code: codeUnavailable, id: tc.id})
			if after := h.upstreamCounts(); !maps2Equal(before, after) {
				t.Errorf("forwarded although the decision could not be recorded")
			}
		})
	}
	// Rejections are still answered while the sink is down.
	h.checkReject(t, "docs", h.do(rawReq{}), rejectWant{status: 401, code: codeUnauthorized, challenge: chNoToken})
	if !strings.Contains(h.logs.String(), "audit write failed") {
		t.Errorf("the failing audit sink was not logged")
	}
	h.audit.setFail(nil)
	h.initSession(t, "docs", tok) // the cap of 1 is free again
	h.assertNoTokenLeak(tok)
}
