package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/authn"
	"github.com/mcpgate/mcpgate/internal/revoke"
)

// openStreams tracks the event streams in flight, so that a revocation
// ends the streams of the tokens it covers at once.
type openStreams struct {
	mu   sync.Mutex // guards m
	next uint64
	m    map[uint64]streamEntry
}

type streamEntry struct {
	tok    revoke.Token
	cancel context.CancelFunc
}

func (o *openStreams) add(tok revoke.Token, cancel context.CancelFunc) (remove func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[uint64]streamEntry{}
	}
	o.next++
	id := o.next
	o.m[id] = streamEntry{tok: tok, cancel: cancel}
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.m, id)
	}
}

// closeRevoked ends the open streams whose token e covers.
func (o *openStreams) closeRevoked(e revoke.Entry) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for id, s := range o.m {
		if covers(e, s.tok) {
			s.cancel()
			delete(o.m, id)
			n++
		}
	}
	return n
}

// covers reports whether revocation e applies to token t (the same rule as
// revoke.List.Check, for one entry).
func covers(e revoke.Entry, t revoke.Token) bool {
	if e.Kind == revoke.KindEpoch { // every issuer's tokens issued before the shared state began
		return t.IssuedAt.IsZero() || t.IssuedAt.Before(e.NotBefore)
	}
	if e.Issuer != t.Issuer {
		return false
	}
	issuedBefore := t.IssuedAt.IsZero() || t.IssuedAt.Before(e.NotBefore)
	switch e.Kind {
	case revoke.KindJTI:
		return t.JTI != "" && t.JTI == e.Value
	case revoke.KindSubject:
		return t.Subject == e.Value && issuedBefore
	case revoke.KindClient:
		return t.ClientID == e.Value && issuedBefore
	}
	return false
}

// revokeToken describes an identity to the revocation list.
func revokeToken(id *authn.Identity) revoke.Token {
	return revoke.Token{Issuer: id.Issuer, JTI: id.TokenID, Subject: id.Subject, ClientID: id.ClientID, IssuedAt: id.IssuedAt}
}

// checkRevoked refuses a revoked token with the 401 of an invalid token.
func (x *exchange) checkRevoked() *rejection {
	return x.checkRevokedWith(x.call == nil || x.call.Msg.Method != "tools/call")
}

// checkRevokedWith is checkRevoked; strict reads the shared list's version
// from Redis instead of the client-side cache.
func (x *exchange) checkRevokedWith(strict bool) *rejection {
	if x.rt.g.revoked == nil {
		return nil
	}
	// A tools/call's state update checks in its own round trip that the
	// list is still the one checked here (state.RedisConfig.Guard), so the
	// client-side cached version suffices; any other request reads the
	// version from Redis: no request is served in the moment a revocation
	// made on another replica is on its way.
	sync := x.rt.g.revoked.Sync
	if strict {
		sync = x.rt.g.revoked.SyncStrict
	}
	if err := sync(x.r.Context()); err != nil {
		return &rejection{status: http.StatusServiceUnavailable, code: codeUnavailable, decision: audit.Error,
			reason: "revocation_state_unavailable", cause: err,
			message: "the gateway cannot confirm that this token is not revoked (its shared state is unreachable); try again later"}
	}
	return x.revocationCheck()
}

// recheckRevoked checks the token again, without syncing, if the shared
// list this replica holds changed since checkRevoked: after a tools/call's
// state update confirmed that list current (state.RedisConfig.Guard).
func (x *exchange) recheckRevoked() *rejection {
	if x.rt.g.revoked == nil {
		return nil
	}
	if _, v := x.rt.g.revoked.SharedGuard(); v == x.revVersion {
		return nil
	}
	return x.revocationCheck()
}

// revocationCheck checks the token against the list as this replica holds
// it, and remembers which version that was.
func (x *exchange) revocationCheck() *rejection {
	_, x.revVersion = x.rt.g.revoked.SharedGuard()
	e, revoked := x.rt.g.revoked.Check(revokeToken(x.ident))
	if !revoked {
		return nil
	}
	if e.Kind == revoke.KindEpoch {
		x.rt.g.metrics.RevokedRequests.WithLabelValues(x.rt.name).Inc()
		return &rejection{status: http.StatusUnauthorized, code: codeUnauthorized, decision: audit.Reject, reason: "revoked_epoch",
			message:   "invalid access token: it was issued before the gateway's shared state was last reset; obtain a new one",
			challenge: x.rt.revokedChallenge(),
		}
	}
	x.rt.g.metrics.RevokedRequests.WithLabelValues(x.rt.name).Inc()
	return &rejection{status: http.StatusUnauthorized, code: codeUnauthorized, decision: audit.Reject, reason: "revoked",
		message:   "invalid access token: it has been revoked; obtain a new one",
		challenge: x.rt.revokedChallenge(),
	}
}

// revocationsAPI serves /admin/revocations: GET lists, POST adds (one
// revoke.Entry as JSON), DELETE removes (?kind=&issuer=&value=).
func (a *admin) revocationsAPI(w http.ResponseWriter, r *http.Request) {
	l := a.g.revoked
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"revocations": l.List()})
	case http.MethodPost:
		var e revoke.Entry
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "the body must be one revocation: {kind, issuer, value, not_before?, until?, reason?}"})
			return
		}
		if !a.knownIssuer(e.Issuer) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request",
				"error_description": "issuer must be one of the configured authorization_servers, exactly", "issuers": a.issuers()})
			return
		}
		added, err := l.Add(e)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, revoke.ErrFull) {
				status = http.StatusInsufficientStorage
			}
			writeJSON(w, status, map[string]string{"error": "invalid_request", "error_description": err.Error()})
			return
		}
		a.g.log.Warn("token revocation added", "kind", string(added.Kind), "issuer", added.Issuer,
			"not_before", added.NotBefore.Format(time.RFC3339), "until", added.Until.Format(time.RFC3339))
		writeJSON(w, http.StatusCreated, added)
	case http.MethodDelete:
		q := r.URL.Query()
		if !a.knownIssuer(q.Get("issuer")) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request",
				"error_description": "issuer must be one of the configured authorization_servers, exactly", "issuers": a.issuers()})
			return
		}
		ok, err := l.Remove(revoke.Kind(q.Get("kind")), q.Get("issuer"), q.Get("value"))
		switch {
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
	}
}

// revokedChallenge is the RFC 6750 challenge for a revoked token.
func (rt *route) revokedChallenge() string {
	return authn.Challenge{ResourceMetadata: rt.metadataURL, Scopes: rt.policy.BaselineScopes(),
		Error: "invalid_token", Description: "the access token has been revoked"}.String()
}

// issuers lists the configured issuers, the only ones a revocation can
// name (a revocation for another string would silently match nothing).
func (a *admin) issuers() []string {
	var out []string
	for _, as := range a.g.cfg.AuthorizationServers {
		out = append(out, as.Issuer)
	}
	return out
}

func (a *admin) knownIssuer(iss string) bool {
	for _, as := range a.g.cfg.AuthorizationServers {
		if as.Issuer == iss {
			return true
		}
	}
	return false
}
