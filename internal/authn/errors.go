package authn

import (
	"errors"
	"net/http"
)

// Sentinel errors for decisions. Every error Authenticate returns is an
// *Error, and errors.Is matches it against exactly one of these, chosen by
// its Status and Code:
//
//	ErrNoToken         401, Code ""               (no bearer credentials presented)
//	ErrInvalidToken    401, Code "invalid_token"
//	ErrInvalidRequest  400, Code "invalid_request"
//	ErrUnavailable     503                        (keys or introspection unavailable: fail closed)
var (
	ErrNoToken        = errors.New("no bearer token")
	ErrInvalidToken   = errors.New("invalid token")
	ErrInvalidRequest = errors.New("invalid request")
	ErrUnavailable    = errors.New("token validation unavailable")
)

// RFC 6750 §3.1 error codes used in Error.Code and Challenge.Error.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Reasons: short stable labels for metrics and audit (Error.Reason).
const (
	ReasonMissing           = "missing"            // no Authorization header
	ReasonUnsupportedScheme = "unsupported_scheme" // Authorization is not Bearer
	ReasonMalformedHeader   = "malformed_header"   // Bearer without a valid b64token
	ReasonMultipleHeaders   = "multiple_headers"
	ReasonQueryToken        = "query_token"
	ReasonTooLarge          = "too_large"
	ReasonMalformed         = "malformed"
	ReasonDuplicateName     = "duplicate_name"    // a JSON member name repeated (also ignoring case)
	ReasonCaseVariantName   = "case_variant_name" // e.g. "Aud" for "aud"
	ReasonBadAlg            = "bad_alg"
	ReasonBadType           = "bad_type"
	ReasonCrit              = "crit"
	ReasonUnknownIssuer     = "unknown_issuer"
	ReasonIssuerNotAllowed  = "issuer_not_allowed"
	ReasonExpired           = "expired"
	ReasonNotYetValid       = "not_yet_valid"
	ReasonIATFuture         = "iat_future"
	ReasonNoExp             = "no_exp"
	ReasonWrongAudience     = "wrong_audience"
	ReasonNoSubject         = "no_sub"
	ReasonNoClientID        = "no_client_id"
	ReasonIDToken           = "id_token" // the token has the marks of an OpenID Connect ID token
	ReasonBadSignature      = "bad_signature"
	ReasonKeyMismatch       = "key_mismatch" // the kid names a key of another type, curve or alg
	ReasonUnknownKey        = "unknown_key"
	ReasonKeysUnavailable   = "keys_unavailable"
	ReasonInactive          = "inactive"
	ReasonIntrospection     = "introspection_failed"
)

// Error is the one error type Authenticate returns. Status, Code and
// Description are safe to send to the client; Err is the cause, for logs.
// No field ever contains token bytes.
type Error struct {
	Status      int    // 400, 401 or 503
	Code        string // RFC 6750 error code: invalid_request, invalid_token, or "" (no token presented, or 503)
	Description string // safe for error_description
	Reason      string // short stable label, one of the Reason constants
	Err         error  // cause; never holds token bytes
}

func (e *Error) Error() string {
	s := "authn: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the decision sentinels (see ErrNoToken).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoToken:
		return e.Status == http.StatusUnauthorized && e.Code == ""
	case ErrInvalidToken:
		return e.Code == CodeInvalidToken
	case ErrInvalidRequest:
		return e.Code == CodeInvalidRequest
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

type reasonInfo struct {
	status int
	code   string
	desc   string
}

var reasons = map[string]reasonInfo{
	ReasonMissing:           {http.StatusUnauthorized, "", ""},
	ReasonUnsupportedScheme: {http.StatusUnauthorized, "", ""},
	ReasonMalformedHeader:   {http.StatusBadRequest, CodeInvalidRequest, "malformed Authorization header"},
	ReasonMultipleHeaders:   {http.StatusBadRequest, CodeInvalidRequest, "more than one Authorization header"},
	ReasonQueryToken:        {http.StatusBadRequest, CodeInvalidRequest, "access tokens are accepted only in the Authorization header"},
	ReasonTooLarge:          {http.StatusUnauthorized, CodeInvalidToken, "token too large"},
	ReasonMalformed:         {http.StatusUnauthorized, CodeInvalidToken, "malformed token"},
	ReasonDuplicateName:     {http.StatusUnauthorized, CodeInvalidToken, "token has duplicate member names"},
	ReasonCaseVariantName:   {http.StatusUnauthorized, CodeInvalidToken, "token has ambiguous member names"},
	ReasonBadAlg:            {http.StatusUnauthorized, CodeInvalidToken, "token signing algorithm not accepted"},
	ReasonBadType:           {http.StatusUnauthorized, CodeInvalidToken, "token type not accepted"},
	ReasonCrit:              {http.StatusUnauthorized, CodeInvalidToken, "token has critical header parameters"},
	ReasonUnknownIssuer:     {http.StatusUnauthorized, CodeInvalidToken, "token issuer not accepted"},
	ReasonIssuerNotAllowed:  {http.StatusUnauthorized, CodeInvalidToken, "token issuer not accepted for this resource"},
	ReasonExpired:           {http.StatusUnauthorized, CodeInvalidToken, "token expired"},
	ReasonNotYetValid:       {http.StatusUnauthorized, CodeInvalidToken, "token not yet valid"},
	ReasonIATFuture:         {http.StatusUnauthorized, CodeInvalidToken, "token issued in the future"},
	ReasonNoExp:             {http.StatusUnauthorized, CodeInvalidToken, "token has no expiry"},
	ReasonWrongAudience:     {http.StatusUnauthorized, CodeInvalidToken, "token audience does not include this resource"},
	ReasonNoSubject:         {http.StatusUnauthorized, CodeInvalidToken, "token has no subject"},
	ReasonNoClientID:        {http.StatusUnauthorized, CodeInvalidToken, "token names no client"},
	ReasonIDToken:           {http.StatusUnauthorized, CodeInvalidToken, "an ID token is not an access token"},
	ReasonBadSignature:      {http.StatusUnauthorized, CodeInvalidToken, "token signature invalid"},
	ReasonKeyMismatch:       {http.StatusUnauthorized, CodeInvalidToken, "token signature invalid"},
	ReasonUnknownKey:        {http.StatusUnauthorized, CodeInvalidToken, "token signing key unknown"},
	ReasonKeysUnavailable:   {http.StatusServiceUnavailable, "", "authorization server keys unavailable"},
	ReasonInactive:          {http.StatusUnauthorized, CodeInvalidToken, "token not active"},
	ReasonIntrospection:     {http.StatusServiceUnavailable, "", "token introspection unavailable"},
}

// reject builds the *Error for reason. cause must not hold token bytes.
func reject(reason string, cause error) *Error {
	ri, ok := reasons[reason]
	if !ok { // a programming error; still fail closed
		ri = reasonInfo{http.StatusUnauthorized, CodeInvalidToken, "invalid token"}
	}
	if cause == nil && ri.code == "" && ri.status == http.StatusUnauthorized {
		cause = ErrNoToken
	}
	return &Error{Status: ri.status, Code: ri.code, Description: ri.desc, Reason: reason, Err: cause}
}

// Fixed causes: none of them carries input bytes, on purpose (json and
// base64 errors can quote a character of the token).
var (
	errBase64      = errors.New("segment is not unpadded base64url")
	errSegments    = errors.New("not three segments")
	errJSON        = errors.New("invalid json")
	errNotObject   = errors.New("json is not an object")
	errTooDeep     = errors.New("json nested too deeply")
	errTooMany     = errors.New("json object has too many members")
	errDuplicate   = errors.New("duplicate member name")
	errCaseVariant = errors.New("member name differs only in case from a registered name")
)
