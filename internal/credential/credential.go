// Package credential produces the credential an upstream MCP server receives
// in place of the client's token (stage 5 of the pipeline).
//
// The client's token is issued for mcpgate (its audience is the route's
// resource) and is never forwarded. Per route, an upstream receives one of:
//
//   - nothing (ModeNone);
//   - a short-lived JWT minted and signed by mcpgate (ModeMint), whose
//     audience is that upstream, whose subject is the user, and whose act
//     claim names mcpgate; mcpgate publishes the verification keys (JWKS);
//   - a token obtained by RFC 8693 token exchange at the authorization
//     server (ModeExchange), cached per caller and upstream;
//   - mcpgate's own service token from the client credentials grant
//     (ModeClientCredentials);
//   - a static header value read from a secret file (ModeStatic).
//
// Every Source returns the exact secret it attached (Credential.Secret), so
// the gateway can make sure that value never reaches the client.
package credential

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Modes, as spelled in the configuration (routes[].credentials.mode).
const (
	ModeNone              = "none"
	ModeMint              = "mint"
	ModeExchange          = "exchange"
	ModeClientCredentials = "client_credentials"
	ModeStatic            = "static"
)

// Caller is what the gateway knows about the authenticated client when it
// asks for an upstream credential.
type Caller struct {
	// Token is the client's raw access token. Only ModeExchange reads it
	// (as the subject_token); it is never logged or put in an error.
	Token    string
	Issuer   string
	Subject  string
	ClientID string
	// Scopes are the caller's granted scopes, expanded by the route's scope
	// hierarchy, sorted.
	Scopes []string
	// Expiry is the inbound token's expiry; zero when unknown. A credential
	// derived from the caller never outlives it.
	Expiry time.Time
	// Actor is the inbound token's act chain (outermost first), if any.
	Actor []string
}

// Credential is one header to set on the upstream request.
type Credential struct {
	Header string // canonical header name, e.g. "Authorization"
	Value  string // the full header value, e.g. "Bearer eyJ…"
	// Secret is the credential itself (the token without "Bearer ", or the
	// static value): the exact bytes that must never reach the client.
	Secret string
	// Expiry is when the credential stops being valid; zero when it does not
	// expire (static).
	Expiry time.Time
	// ID identifies the credential in audit records without revealing it:
	// the jti of a minted token, otherwise a short hash of the secret.
	ID string
}

// Source produces the credential for one upstream request.
type Source interface {
	// Credential returns the credential to attach for this caller. Every
	// error is an *Error.
	Credential(ctx context.Context, c Caller) (Credential, error)
}

// Kind classifies a failure to obtain a credential.
type Kind int

const (
	// Denied: the authorization server refused (a 4xx answer): the call is
	// denied; retrying will not help.
	Denied Kind = iota + 1
	// Unavailable: the authorization server failed, timed out, or its
	// circuit breaker is open; or a secret file cannot be read. The call
	// fails with 503; retrying later may help.
	Unavailable
)

// Error is a failure to obtain a credential. Message is safe to show to
// the client and to log: it never contains a secret, a token or an
// authorization server's free-text error description.
type Error struct {
	Kind    Kind
	Message string // for the client, e.g. "the authorization server refused the token exchange (invalid_target)"
	Err     error  // cause, for logs; must not contain secrets either
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("credential: %s: %v", e.Message, e.Err)
	}
	return "credential: " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// IsDenied reports whether err is an *Error of kind Denied.
func IsDenied(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Denied
}
