// This file implements the token side of the storage: issuance for every
// grant, refresh token rotation (OAuth 2.1 §4.3.1), introspection
// (RFC 7662) and revocation (RFC 7009).
// See https://www.rfc-editor.org/rfc/rfc7662 and
// https://www.rfc-editor.org/rfc/rfc7009.

package devauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// accessToken is the record behind an issued access token.
type accessToken struct {
	id, grantID, clientID, subject, audience string
	scopes                                   []string
	issuedAt, expiry, authTime               time.Time
	actor                                    *actorClaim
	revoked                                  bool
}

// refreshToken is the record behind an issued refresh token, stored under
// the hash of the token.
type refreshToken struct {
	grantID, clientID, subject, resource string
	scopes                               []string // the grant's; a refresh may narrow the access token's only
	authTime, expiry                     time.Time
	used, revoked                        bool
}

func refreshKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// issuance is what a grant yields, whatever its type.
type issuance struct {
	grantID, clientID, subject, audience string
	scopes                               []string
	authTime                             time.Time
	actor                                *actorClaim
}

// issuanceFor resolves the token request op passes to CreateAccessToken or
// CreateAccessAndRefreshTokens; aud is the resource on every grant.
func (st *store) issuanceFor(ctx context.Context, req op.TokenRequest) (issuance, error) {
	switch r := req.(type) {
	case *authRequest:
		if !r.done {
			return issuance{}, oidc.ErrServerError().WithDescription("authorization request not approved")
		}
		aud, err := st.s.grantResource(ctx, r.resource)
		return issuance{grantID: r.id, clientID: r.clientID, subject: r.subject, audience: aud,
			scopes: r.granted, authTime: r.authTime}, err
	case *refreshRequest:
		aud, err := st.s.grantResource(ctx, r.rec.resource)
		return issuance{grantID: r.rec.grantID, clientID: r.rec.clientID, subject: r.rec.subject, audience: aud,
			scopes: r.current, authTime: r.rec.authTime}, err
	case *clientCredentialsRequest:
		return issuance{grantID: "cc_" + rand.Text(), clientID: r.clientID, subject: r.clientID,
			audience: r.resource, scopes: r.scopes}, nil
	case op.TokenExchangeRequest:
		return st.exchangeIssuance(r)
	}
	return issuance{}, oidc.ErrServerError().WithDescription("unexpected token request")
}

// CreateAccessToken records an access token; op then has it minted by
// tokenCrypto.Encrypt.
func (st *store) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	iss, err := st.issuanceFor(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	at, err := st.newAccessTokenLocked(iss, now)
	if err != nil {
		return "", time.Time{}, err
	}
	return at.id, at.expiry, nil
}

// CreateAccessAndRefreshTokens records an access token and a new refresh
// token; with current set (the refresh grant) it rotates current out.
func (st *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	iss, err := st.issuanceFor(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	grantScopes := iss.scopes
	if rr, ok := req.(*refreshRequest); ok {
		grantScopes = rr.rec.scopes
	} else if current != "" {
		return "", "", time.Time{}, oidc.ErrServerError().WithDescription("unexpected refresh token")
	}
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if current != "" {
		old, ok := st.refresh[refreshKey(current)]
		if !ok || old.used || old.revoked || !now.Before(old.expiry) || old.grantID != iss.grantID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is not valid")
		}
		old.used = true
	}
	at, err := st.newAccessTokenLocked(iss, now)
	if err != nil {
		return "", "", time.Time{}, err
	}
	tok := refreshTokenPrefix + rand.Text() + rand.Text()
	st.refresh[refreshKey(tok)] = &refreshToken{
		grantID: iss.grantID, clientID: iss.clientID, subject: iss.subject, resource: iss.audience,
		scopes: slices.Clone(grantScopes), authTime: iss.authTime, expiry: now.Add(st.s.cfg.RefreshTokenTTL),
	}
	return at.id, tok, at.expiry, nil
}

func (st *store) newAccessTokenLocked(iss issuance, now time.Time) (*accessToken, error) {
	st.sweep(now)
	if _, revoked := st.revoked[iss.grantID]; revoked {
		return nil, oidc.ErrInvalidGrant().WithDescription("grant revoked")
	}
	at := &accessToken{
		id: accessTokenPrefix + rand.Text(), grantID: iss.grantID, clientID: iss.clientID,
		subject: iss.subject, audience: iss.audience, scopes: slices.Clone(iss.scopes),
		issuedAt: now, expiry: now.Add(st.s.cfg.AccessTokenTTL), authTime: iss.authTime, actor: iss.actor,
	}
	st.access[at.id] = at
	st.s.log.Info("devauth: access token issued", "client_id", at.clientID, "sub", at.subject,
		"aud", at.audience, "scope", strings.Join(at.scopes, " "), "jti", at.id)
	return at, nil
}

// accessTokenRecord returns a copy of a token record, for minting.
func (st *store) accessTokenRecord(id string) (accessToken, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	at, ok := st.access[id]
	if !ok {
		return accessToken{}, false
	}
	return *at, true
}

// activeAccessToken returns a copy of a token that is neither expired nor
// revoked.
func (st *store) activeAccessToken(id string) (accessToken, bool) {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	at, ok := st.access[id]
	if !ok || at.revoked || !now.Before(at.expiry) {
		return accessToken{}, false
	}
	if _, revoked := st.revoked[at.grantID]; revoked {
		return accessToken{}, false
	}
	return *at, true
}

// refreshRequest is the op.RefreshTokenRequest of a refresh grant.
type refreshRequest struct {
	rec     refreshToken
	current []string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return nil }
func (r *refreshRequest) GetAudience() []string       { return []string{r.rec.clientID} } // the ID token's
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rec.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rec.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.current }
func (r *refreshRequest) GetSubject() string          { return r.rec.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.current = s }

// TokenRequestByRefreshToken looks a refresh token up. Presenting one that
// was already rotated out revokes its whole grant (OAuth 2.1 §4.3.1).
func (st *store) TokenRequestByRefreshToken(_ context.Context, tok string) (op.RefreshTokenRequest, error) {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	rt, ok := st.refresh[refreshKey(tok)]
	switch {
	case !ok:
		return nil, errors.New("unknown refresh token")
	case rt.used:
		st.revokeGrantLocked(rt.grantID, now)
		st.s.log.Warn("devauth: rotated-out refresh token reused; grant revoked", "client_id", rt.clientID,
			"sub", rt.subject, "token_fp", fingerprint(tok))
		return nil, errors.New("refresh token already used")
	case rt.revoked || !now.Before(rt.expiry):
		return nil, errors.New("refresh token expired or revoked")
	}
	if _, revoked := st.revoked[rt.grantID]; revoked {
		return nil, errors.New("grant revoked")
	}
	return &refreshRequest{rec: *rt, current: slices.Clone(rt.scopes)}, nil
}

// GetRefreshTokenInfo lets op's revocation endpoint recognize a refresh
// token: the id returned is refreshTokenPrefix + its storage key.
func (st *store) GetRefreshTokenInfo(_ context.Context, _ string, tok string) (string, string, error) {
	key := refreshKey(tok)
	st.mu.Lock()
	defer st.mu.Unlock()
	rt, ok := st.refresh[key]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, refreshTokenPrefix + key, nil
}

// RevokeToken implements RFC 7009 §2.1 for op: an access token is revoked
// alone, a refresh token with its whole grant; a token of another client
// is refused; an unknown token is not an error.
func (st *store) RevokeToken(_ context.Context, idOrToken, _ string, clientID string) *oidc.Error {
	now := st.s.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if at, ok := st.access[idOrToken]; ok {
		if at.clientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
		}
		at.revoked = true
		st.s.log.Info("devauth: access token revoked", "client_id", clientID, "jti", at.id)
		return nil
	}
	if key, ok := strings.CutPrefix(idOrToken, refreshTokenPrefix); ok {
		if rt, ok := st.refresh[key]; ok {
			if rt.clientID != clientID {
				return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
			}
			st.revokeGrantLocked(rt.grantID, now)
			st.s.log.Info("devauth: refresh token revoked with its grant", "client_id", clientID)
		}
	}
	return nil
}

// revokeGrantLocked revokes every token of a grant, and any still to be
// issued from it.
func (st *store) revokeGrantLocked(grantID string, now time.Time) {
	st.revoked[grantID] = now.Add(max(st.s.cfg.AccessTokenTTL, st.s.cfg.RefreshTokenTTL) + AuthRequestTTL)
	for _, at := range st.access {
		if at.grantID == grantID {
			at.revoked = true
		}
	}
	for _, rt := range st.refresh {
		if rt.grantID == grantID {
			rt.revoked = true
		}
	}
}

// SetIntrospectionFromToken answers RFC 7662 for an active access token;
// op has authenticated the calling client. An error means inactive.
func (st *store) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, id, _, _ string) error {
	at, ok := st.activeAccessToken(id)
	if !ok {
		return errors.New("token not active")
	}
	resp.Scope = slices.Clone(at.scopes)
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expiry)
	resp.IssuedAt = oidc.FromTime(at.issuedAt)
	resp.Subject = at.subject
	resp.Audience = []string{at.audience}
	resp.Issuer = st.s.issuer
	resp.JWTID = at.id
	resp.Actor = toOIDCActor(at.actor)
	if u, ok := st.s.userBySubject(at.subject); ok {
		resp.Username = u.Username
	}
	return nil
}

func toOIDCActor(a *actorClaim) *oidc.ActorClaims {
	if a == nil {
		return nil
	}
	return &oidc.ActorClaims{Subject: a.Subject, Actor: toOIDCActor(a.Actor)}
}

// sweep forgets expired records, at most once a minute.
func (st *store) sweep(now time.Time) {
	if now.Sub(st.lastSweep) < time.Minute {
		return
	}
	st.lastSweep = now
	for id, ar := range st.authReqs {
		if now.Sub(ar.created) >= AuthRequestTTL+CodeTTL {
			delete(st.codes, ar.code)
			delete(st.authReqs, id)
		}
	}
	for id, at := range st.access {
		if !now.Before(at.expiry) {
			delete(st.access, id)
		}
	}
	for k, rt := range st.refresh {
		if !now.Before(rt.expiry) {
			delete(st.refresh, k)
		}
	}
	for g, until := range st.revoked {
		if !now.Before(until) {
			delete(st.revoked, g)
		}
	}
}
