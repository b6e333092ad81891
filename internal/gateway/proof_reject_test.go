package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// This file holds expectReject, which asserts everything a rejection must
// satisfy, and the WWW-Authenticate parser it uses.

// challengeKind is what the WWW-Authenticate header of a rejection must be.
type challengeKind int

const (
	chNone       challengeKind = iota // no WWW-Authenticate
	chNoToken                         // 401: resource_metadata and scope, no error
	chBadToken                        // 401: the same plus error="invalid_token"
	chBadRequest                      // 400: resource_metadata and error="invalid_request"
	chStepUp                          // 403: insufficient_scope with the scopes in want.scopes
)

// rejectWant is everything a rejection must look like.
type rejectWant struct {
	status    int
	code      int    // JSON-RPC error code
	id        string // the error's id, raw JSON; "" → null
	challenge challengeKind
	scopes    []string // chStepUp: needed ∪ granted; chNoToken/chBadToken: nil → the route's required scopes
	decision  string   // audit decision
	reason    string   // audit reason
}

// expectReject sends rr and asserts the whole rejection contract: status,
// challenge, JSON-RPC error, nothing forwarded, no token bytes anywhere,
// exactly one decision record. secret, when set, is looked for in place of
// rr.token (e.g. a token sent in the query string).
func (h *harness) expectReject(t *testing.T, rr rawReq, want rejectWant, secret ...string) *rawResp {
	t.Helper()
	before := h.upstreamCounts()
	nAudit := len(h.audit.events())
	resp := h.do(rr)
	h.checkReject(t, rr.route, resp, want)
	if after := h.upstreamCounts(); !maps2Equal(before, after) {
		t.Errorf("upstream received a request for a rejected call: before %v, after %v", before, after)
	}
	evs := h.eventsFor(resp.requestID())
	if len(evs) != 1 {
		t.Errorf("audit records for request %s = %d, want exactly 1: %+v", resp.requestID(), len(evs), evs)
	} else {
		e := evs[0]
		if e.Kind != audit.KindDecision || e.Decision != want.decision || e.Reason != want.reason {
			t.Errorf("audit record = kind %q decision %q reason %q, want decision %q reason %q",
				e.Kind, e.Decision, e.Reason, want.decision, want.reason)
		}
		if e.Status != want.status {
			t.Errorf("audit status = %d, want %d", e.Status, want.status)
		}
	}
	// Besides its own record, only outcomes of earlier forwarded requests
	// (written once their client had the response) may have arrived.
	for _, e := range h.audit.events()[nAudit:] {
		if e.RequestID != resp.requestID() && e.Kind != audit.KindOutcome {
			t.Errorf("an unrelated decision record was written: %+v", e)
		}
	}
	for _, s := range append(secret, rr.token) {
		if s != "" {
			h.assertNoTokenLeakT(t, s)
		}
	}
	return resp
}

// checkReject asserts status, challenge and JSON-RPC error of resp.
func (h *harness) checkReject(t *testing.T, route string, resp *rawResp, want rejectWant) {
	t.Helper()
	if route == "" {
		route = "docs"
	}
	if resp.status != want.status {
		t.Errorf("status = %d, want %d; body %s", resp.status, want.status, resp.body)
	}
	h.checkChallenge(t, route, resp.header, want)
	m := resp.rpc(t)
	if m.Error == nil {
		t.Fatalf("body is not a JSON-RPC error: %s", resp.body)
	}
	if m.Error.Code != want.code {
		t.Errorf("JSON-RPC code = %d, want %d (%s)", m.Error.Code, want.code, m.Error.Message)
	}
	wantID := want.id
	if wantID == "" {
		wantID = "null"
	}
	if got := string(m.ID); got != wantID {
		t.Errorf("JSON-RPC id = %s, want %s", got, wantID)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func (h *harness) checkChallenge(t *testing.T, route string, hdr http.Header, want rejectWant) {
	t.Helper()
	vals := hdr.Values("WWW-Authenticate")
	if want.challenge == chNone {
		if len(vals) != 0 {
			t.Errorf("WWW-Authenticate = %q, want none", vals)
		}
		return
	}
	if len(vals) != 1 {
		t.Fatalf("WWW-Authenticate = %q, want exactly one", vals)
	}
	params, ok := parseBearerChallenge(vals[0])
	if !ok {
		t.Fatalf("WWW-Authenticate %q is not a Bearer challenge", vals[0])
	}
	if got, want := params["resource_metadata"], h.metadataURL(route); got != want {
		t.Errorf("resource_metadata = %q, want %q", got, want)
	}
	wantScopes := want.scopes
	switch want.challenge {
	case chNoToken, chBadToken:
		if wantScopes == nil {
			wantScopes = []string{route + ":read"}
		}
	case chBadRequest:
		wantScopes = nil
	}
	var gotScopes []string
	if s, ok := params["scope"]; ok {
		gotScopes = strings.Fields(s)
	}
	if !sameSet(gotScopes, wantScopes) {
		t.Errorf("challenge scope = %q, want %q (header %q)", gotScopes, wantScopes, vals[0])
	}
	wantErr := map[challengeKind]string{chBadToken: "invalid_token", chBadRequest: "invalid_request", chStepUp: "insufficient_scope"}[want.challenge]
	if got, present := params["error"]; got != wantErr || present != (wantErr != "") {
		t.Errorf("challenge error = %q (present %v), want %q (header %q)", got, present, wantErr, vals[0])
	}
}

// parseBearerChallenge parses `Bearer k="v", k2="v2"` (RFC 9110 auth-param,
// quoted values with backslash escapes, or tokens).
func parseBearerChallenge(s string) (map[string]string, bool) {
	if !strings.HasPrefix(s, "Bearer") {
		return nil, false
	}
	s = strings.TrimSpace(s[len("Bearer"):])
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " ")
		var val strings.Builder
		if strings.HasPrefix(s, `"`) {
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			s = s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		if _, dup := out[name]; dup {
			return nil, false
		}
		out[name] = val.String()
		s = strings.TrimLeft(s, " ")
		if strings.HasPrefix(s, ",") {
			s = strings.TrimLeft(s[1:], " ")
		} else if s != "" {
			return nil, false
		}
	}
	return out, true
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b)) && len(a) == len(b)
}

func maps2Equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
