// Package config turns mcpgate's YAML configuration into a validated
// [Config].
//
// Loading is strict: unknown keys, duplicate keys and wrongly typed values are
// errors, and [Config.Validate] reports every problem at once (errors.Join),
// each naming the key it is about, so an operator fixes a file in one pass.
// Validation is pure: it reads no files and opens no connections beyond what
// [Load] needs to read the document itself. Defaults are applied by
// [Config.ApplyDefaults]; docs/config.md documents every key and its default.
package config

import "time"

// Config is the whole mcpgate configuration.
type Config struct {
	// Server configures the client-facing listener.
	Server Server `yaml:"server"`
	// Limits bounds what one client or principal may consume.
	Limits Limits `yaml:"limits"`
	// AuthorizationServers are the issuers whose access tokens mcpgate
	// accepts. At least one is required.
	AuthorizationServers []AuthorizationServer `yaml:"authorization_servers"`
	// Scopes holds settings that apply to every route's scopes.
	Scopes Scopes `yaml:"scopes"`
	// Routes are the protected MCP endpoints. At least one is required.
	Routes []Route `yaml:"routes"`
	// Sequence configures sequence-aware policy: the history of an agent's
	// run and the rules decided over it (docs/policy.md).
	Sequence Sequence `yaml:"sequence"`
	// ToolPinsFile persists the fingerprints of upstream tool definitions
	// and operators' approvals of changed ones. "" → kept in memory only.
	ToolPinsFile string `yaml:"tool_pins_file"`
	// Credentials holds settings shared by the routes' upstream credentials
	// (docs/credentials.md).
	Credentials Credentials `yaml:"credentials"`
	// Redaction configures the credential detectors applied to tool
	// arguments and to everything returned to clients.
	Redaction Redaction `yaml:"redaction"`
	// Audit configures the audit trail.
	Audit Audit `yaml:"audit"`
	// Admin configures the admin listener (metrics, health, admin API).
	Admin Admin `yaml:"admin"`
	// Revocation configures token revocation.
	Revocation Revocation `yaml:"revocation"`
	// Store says where state shared by replicas lives: in this process
	// (default) or in Redis (docs/scaling.md).
	Store Store `yaml:"store"`
	// Anomaly configures behavioural anomaly detection.
	Anomaly Anomaly `yaml:"anomaly"`
	// Log configures operational logging (never tokens or secrets).
	Log Log `yaml:"log"`
	// Development holds switches that weaken security for local work.
	// Every one of them is off by default and logged loudly when on.
	Development Development `yaml:"development"`
}

// Server configures the client-facing HTTP listener.
type Server struct {
	// Listen is the TCP address to listen on. Default ":8080".
	Listen string `yaml:"listen"`
	// PublicBaseURL is the externally visible origin of mcpgate, e.g.
	// "https://mcp.example.com" (no path). Each route's
	// canonical resource URI is PublicBaseURL + route path; it is never
	// derived from Host or X-Forwarded-Host. Required; https unless the host
	// is a loopback address.
	PublicBaseURL string `yaml:"public_base_url"`
	// TLS enables TLS on the listener. Certificate files are re-read when
	// they change.
	TLS *ListenerTLS `yaml:"tls"`
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may call MCP endpoints. A request whose Origin header is present and
	// not listed gets 403. Requests without Origin are allowed. Default none.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// TrustedProxies lists CIDRs of reverse proxies whose X-Forwarded-For
	// header is believed when determining the client IP for rate limiting.
	// Default none: the TCP peer address is the client IP.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// BodyReadTimeout bounds reading a request body. Default 30s.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request header size. Default 32KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// ListenerTLS configures TLS on the listener.
type ListenerTLS struct {
	// CertFile is the PEM certificate chain. Required.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key. Required.
	KeyFile string `yaml:"key_file"`
	// MinVersion is "1.2" or "1.3". Default "1.2".
	MinVersion string `yaml:"min_version"`
}

// Limits bounds resource use per request, client IP and principal.
type Limits struct {
	// MaxBodyBytes bounds a request body; larger bodies get 413. Default 4MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxJSONDepth bounds JSON nesting in request bodies. Default 64.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// MaxTokenBytes bounds the bearer token size. Default 8KiB.
	MaxTokenBytes ByteSize `yaml:"max_token_bytes"`
	// MaxResponseBytes bounds an upstream JSON response that mcpgate must
	// inspect (list filtering, session set-up). Default 16MiB.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes"`
	// RatePerIP limits requests per client IP before authentication.
	RatePerIP Rate `yaml:"rate_per_ip"`
	// MaxSessionsPerPrincipal caps concurrent MCP sessions per
	// (issuer, subject, client_id). Default 64.
	MaxSessionsPerPrincipal int `yaml:"max_sessions_per_principal"`
	// MaxStreamsPerPrincipal caps concurrently open long-lived SSE streams
	// (GET streams and subscriptions/listen) per principal. Default 32.
	MaxStreamsPerPrincipal int `yaml:"max_streams_per_principal"`
	// MaxSessions caps the sessions mcpgate tracks in all. Default 100000.
	MaxSessions int `yaml:"max_sessions"`
	// SessionIdleTimeout forgets a session binding unused this long.
	// Default 1h.
	SessionIdleTimeout Duration `yaml:"session_idle_timeout"`
}

// Rate is a token-bucket rate limit.
type Rate struct {
	// RequestsPerSecond is the sustained rate. Default 50. A negative
	// value disables the limit.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst is the bucket size. Default 100.
	Burst int `yaml:"burst"`
}

// AuthorizationServer is one trusted token issuer.
type AuthorizationServer struct {
	// Issuer is the exact issuer identifier. Metadata is discovered from it
	// (RFC 8414 and OpenID discovery, in the MCP 2025-11-25 probe order) and
	// its "issuer" must equal this value byte for byte. Required.
	Issuer string `yaml:"issuer"`
	// Algorithms pins the JWS algorithms accepted from this issuer.
	// Default [RS256]. Allowed: RS256 RS384 RS512 PS256 PS384 PS512 ES256
	// ES384 ES512 EdDSA.
	Algorithms []string `yaml:"algorithms"`
	// AllowLegacyJWTType also accepts tokens whose typ header is "JWT" or
	// absent, for issuers that do not emit RFC 9068 "at+jwt". Default false.
	AllowLegacyJWTType bool `yaml:"allow_legacy_jwt_typ"`
	// ClientIDClaims are the claims read, in order, for the client id.
	// Default [client_id, azp]. Allowed: client_id, azp, cid (Okta), appid
	// (Entra ID v1 tokens).
	ClientIDClaims []string `yaml:"client_id_claims"`
	// ScopeClaims are the claims scopes are read from; the first present
	// wins. Default [scope, scp]. Allowed: scope, scp, roles (Entra ID app
	// roles in app-only tokens).
	ScopeClaims []string `yaml:"scope_claims"`
	// ClockSkew tolerated on exp, nbf and iat. Default 60s, at most 300s.
	ClockSkew Duration `yaml:"clock_skew"`
	// JWKSURI overrides the jwks_uri found by discovery.
	JWKSURI string `yaml:"jwks_uri"`
	// JWKSRefreshInterval is how often keys are refreshed in the
	// background. Default 15m.
	JWKSRefreshInterval Duration `yaml:"jwks_refresh_interval"`
	// JWKSMaxStale is how long the last good key set is used while the
	// issuer is unreachable; after that requests fail closed with 503.
	// Default 1h.
	JWKSMaxStale Duration `yaml:"jwks_max_stale"`
	// UnknownKIDCooldown is the minimum time between refetches triggered by
	// tokens with an unknown key id. Default 30s.
	UnknownKIDCooldown Duration `yaml:"unknown_kid_cooldown"`
	// CAFile is a PEM bundle trusted for this issuer's TLS instead of the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// HTTPTimeout bounds each call to the issuer. Default 5s.
	HTTPTimeout Duration `yaml:"http_timeout"`
	// Introspection enables RFC 7662 introspection of opaque tokens.
	Introspection *Introspection `yaml:"introspection"`
}

// Introspection configures RFC 7662 token introspection at an issuer.
type Introspection struct {
	// Endpoint overrides the introspection_endpoint found by discovery.
	Endpoint string `yaml:"endpoint"`
	// ClientID authenticates mcpgate at the endpoint. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret. Required. The file must not
	// be readable by other users.
	ClientSecretFile string `yaml:"client_secret_file"`
	// AuthMethod is client_secret_basic (default) or client_secret_post.
	AuthMethod string `yaml:"auth_method"`
	// CacheTTL bounds how long an answer is reused; never beyond the token's
	// expiry. Default 60s.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// Scopes holds scope settings shared by all routes.
type Scopes struct {
	// Implies declares scope hierarchies: each key implies every listed
	// scope, transitively ("docs:write": ["docs:read"]).
	Implies map[string][]string `yaml:"implies"`
}

// Route is one protected MCP endpoint and the upstream behind it.
type Route struct {
	// Name identifies the route in logs, audit and metrics. Required,
	// unique, [a-z0-9_-].
	Name string `yaml:"name"`
	// Path is the public path of the MCP endpoint, e.g. "/servers/docs/mcp".
	// Required, unique.
	Path string `yaml:"path"`
	// ResourceName is a human-readable name published in the protected
	// resource metadata.
	ResourceName string `yaml:"resource_name"`
	// Upstream is the MCP server behind this route.
	Upstream Upstream `yaml:"upstream"`
	// Credentials is what the upstream receives in place of the client's
	// token, which is never forwarded. Default mode none.
	Credentials RouteCredentials `yaml:"credentials"`
	// Audiences are further values accepted in a token's aud for this
	// route besides its resource URI, compared exactly, for identity
	// providers that cannot put the resource URI in aud (Entra ID's
	// application id or App ID URI). Unique across routes.
	Audiences []string `yaml:"audiences"`
	// AuthorizationServers restricts this route to some of the configured
	// issuers. Default: all of them.
	AuthorizationServers []string `yaml:"authorization_servers"`
	// RequiredScopes are needed for any request to this route. They are
	// also the scopes published in scopes_supported and the 401 challenge.
	RequiredScopes []string `yaml:"required_scopes"`
	// Tools maps tool names to their rules (tools/call).
	Tools map[string]ItemRule `yaml:"tools"`
	// Prompts maps prompt names to their rules (prompts/get).
	Prompts map[string]ItemRule `yaml:"prompts"`
	// Resources lists resource rules, first match wins (resources/read,
	// subscribe, unsubscribe).
	Resources []ResourceRule `yaml:"resources"`
	// IgnoreToolAnnotations stops labels being seeded from the upstream's
	// tool annotations (readOnlyHint, destructiveHint, openWorldHint).
	// Default false: annotations seed labels for tools that have none
	// configured.
	IgnoreToolAnnotations bool `yaml:"ignore_tool_annotations"`
	// TrustResultLabels adds the labels an upstream attaches to a result
	// (in _meta "mcpgate.dev/labels") to the run's taint. Default false.
	TrustResultLabels bool `yaml:"trust_result_labels"`
	// ToolPinning is off, alert (default: changed tool definitions are
	// recorded and flagged) or block (a changed tool is refused until an
	// operator approves it).
	ToolPinning string `yaml:"tool_pinning"`
	// DefaultTool applies to tools not listed in Tools. Default deny.
	DefaultTool DefaultRule `yaml:"default_tool"`
	// DefaultPrompt applies to prompts not listed in Prompts. Default deny.
	DefaultPrompt DefaultRule `yaml:"default_prompt"`
	// DefaultResource applies to resources no rule matches. Default deny.
	DefaultResource DefaultRule `yaml:"default_resource"`
}

// Upstream describes the MCP server behind a route.
type Upstream struct {
	// URL of the upstream MCP endpoint (http or https). Required.
	URL string `yaml:"url"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers (for a JSON response, the whole tool run). Default 2m.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// DialTimeout bounds connecting to the upstream. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ForwardHeaders names extra request headers passed to the upstream
	// besides the MCP, content-negotiation and tracing headers. Credentials,
	// cookies and hop-by-hop headers can never be listed.
	ForwardHeaders []string `yaml:"forward_headers"`
	// TLS configures TLS to an https upstream.
	TLS *UpstreamTLS `yaml:"tls"`
}

// UpstreamTLS configures TLS from mcpgate to an upstream.
type UpstreamTLS struct {
	// CAFile pins the CA bundle used to verify the upstream instead of the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the upstream certificate.
	ServerName string `yaml:"server_name"`
}

// ItemRule authorizes one tool or prompt.
type ItemRule struct {
	// Scopes required to call it, on top of the route's. A scope may be
	// templated from an argument: "document:read:{project}".
	Scopes []string `yaml:"scopes"`
	// Arguments constrains the arguments used in templated scopes.
	Arguments map[string]ArgumentRule `yaml:"arguments"`
	// Deny refuses every call, whatever the token holds.
	Deny bool `yaml:"deny"`
	// Labels classify the tool for sequence rules (private_data,
	// untrusted_input, egress, destructive, …). When set they replace the
	// labels seeded from the tool's annotations. Tools only.
	Labels []string `yaml:"labels"`
	// ResultLabels are added to the run's taint when a call returns a
	// result (e.g. untrusted_input for a tool that fetches web pages).
	// Tools only.
	ResultLabels []string `yaml:"result_labels"`
}

// Sequence configures sequence-aware policy.
type Sequence struct {
	// History says whose calls form one history.
	History History `yaml:"history"`
	// RequestHeaders names request headers exposed to rules as
	// request.headers. List only headers that a trusted proxy in front of
	// mcpgate sets (and strips from clients): device posture, risk scores.
	RequestHeaders []string `yaml:"request_headers"`
	// Rules are decided on every tools/call (phase call) or applied to
	// tools/list (phase list).
	Rules []SequenceRule `yaml:"rules"`
}

// History says whose calls form one history and how long it lasts.
type History struct {
	// Scope is principal (default: issuer, subject and client across all
	// routes), subject (issuer and subject across clients) or session
	// (per MCP session; requests without one use the principal).
	Scope string `yaml:"scope"`
	// RunIDHeader names a request header carrying an agent run id, which
	// narrows the history to that run (never replacing the principal).
	RunIDHeader string `yaml:"run_id_header"`
	// IdleTimeout forgets a history unused this long. Default 1h.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxEntries bounds the calls kept per history (older ones are
	// dropped; taint and counts are kept). Default 1000.
	MaxEntries int `yaml:"max_entries"`
	// MaxHistories bounds the histories and counters kept. Default 100000.
	MaxHistories int `yaml:"max_histories"`
}

// SequenceRule is one sequence rule; exactly one of Flow, Order, Budget
// and When is set.
type SequenceRule struct {
	ID          string      `yaml:"id"`
	Description string      `yaml:"description"`
	Phase       string      `yaml:"phase"`   // call (default) or list
	Action      string      `yaml:"action"`  // deny (default) or step_up
	Scope       string      `yaml:"scope"`   // step_up: the scope that unlocks
	Message     string      `yaml:"message"` // told to the agent
	Flow        *FlowRule   `yaml:"flow"`
	Order       *OrderRule  `yaml:"order"`
	Budget      *BudgetRule `yaml:"budget"`
	When        string      `yaml:"when"` // CEL
}

// Match selects calls: every field given must match.
type Match struct {
	Routes []string `yaml:"routes"`
	Tools  []string `yaml:"tools"`  // names or globs
	Labels []string `yaml:"labels"` // any of
}

// FlowRule fires on a call matching To when the run's taint has all of
// Taint.
type FlowRule struct {
	Taint []string `yaml:"taint"`
	To    Match    `yaml:"to"`
}

// OrderRule: Call only after After (optionally with the same argument
// values), or Call never after NeverAfter.
type OrderRule struct {
	Call          Match    `yaml:"call"`
	After         *Match   `yaml:"after"`
	SameArguments []string `yaml:"same_arguments"`
	NeverAfter    *Match   `yaml:"never_after"`
}

// BudgetRule allows at most Max matching calls per Window, per session
// (the history), subject or client.
type BudgetRule struct {
	Match  Match    `yaml:"match"`
	Max    int      `yaml:"max"`
	Window Duration `yaml:"window"`
	Per    string   `yaml:"per"`
}

// ArgumentRule constrains one argument value.
type ArgumentRule struct {
	// Pattern is an RE2 expression the whole value must match. Required.
	Pattern string `yaml:"pattern"`
}

// ResourceRule authorizes resources by URI.
type ResourceRule struct {
	// URI is exact ("docs://readme"), a template whose {vars} each match one
	// path segment ("docs://projects/{project}/readme"), or a prefix ending
	// in "/*" ("docs://public/*").
	URI string `yaml:"uri"`
	// Scopes required, on top of the route's; may use the URI's {vars}.
	Scopes []string `yaml:"scopes"`
	// Arguments constrains the URI's {vars}.
	Arguments map[string]ArgumentRule `yaml:"arguments"`
	// Deny refuses every matching URI.
	Deny bool `yaml:"deny"`
}

// DefaultRule decides for items that no rule lists.
type DefaultRule struct {
	// Allow permits unlisted items. Default false (deny).
	Allow bool `yaml:"allow"`
	// Scopes required for unlisted items when Allow is true.
	Scopes []string `yaml:"scopes"`
}

// Audit configures the audit trail (docs/audit.md).
type Audit struct {
	// Sink is "stdout" (default) or "file".
	Sink string `yaml:"sink"`
	// File is the active JSON-lines file of the "file" sink; rotated files
	// are renamed beside it.
	File string `yaml:"file"`
	// Fsync is "always" (default: a record is on disk before the call it
	// records goes ahead) or "interval".
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the fsync period with fsync: interval. Default 1s.
	FsyncInterval Duration `yaml:"fsync_interval"`
	// RotateSize rotates the file before it grows past this size; 0 never.
	RotateSize ByteSize `yaml:"rotate_size"`
	// RotateInterval rotates the file when it is older than this; 0 never.
	RotateInterval Duration `yaml:"rotate_interval"`
	// QueueSize bounds the records waiting to be written. Default 1024.
	QueueSize int `yaml:"queue_size"`
	// QueueTimeout is how long a request waits for room in a full queue
	// before its record fails. Default 1s.
	QueueTimeout Duration `yaml:"queue_timeout"`
	// WriteTimeout bounds how long a request waits for its record to be
	// written (queue and fsync); past it the record has failed. Default 5s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// SigningKeyFile is an Ed25519 private key (PKCS#8 PEM) that signs the
	// chain's checkpoints. Without it the chain is kept but not signed.
	SigningKeyFile string `yaml:"signing_key_file"`
	// CheckpointInterval is how often a signed checkpoint is written (also
	// at start, at every rotation and at shutdown). Default 1m.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// OnFailure is deny (default: a request whose decision cannot be
	// recorded is refused) or allow (it goes ahead; counted and logged).
	OnFailure string `yaml:"on_failure"`
	// CaptureArguments records tool arguments, after redaction. Default
	// false: only their SHA-256 digest is recorded.
	CaptureArguments bool `yaml:"capture_arguments"`
}

// Log configures operational logs.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// Development holds switches for local development only.
type Development struct {
	// InsecureAllowHTTPLoopback lets issuers (discovery, JWKS,
	// introspection) be reached over plain http on loopback addresses.
	InsecureAllowHTTPLoopback bool `yaml:"insecure_allow_http_loopback"`
	// AllowSecretLiterals accepts secrets written in the configuration
	// (routes[].credentials.client_secret and .value) instead of files.
	AllowSecretLiterals bool `yaml:"allow_secret_literals"`
}

// Default values, documented in docs/config.md.
const (
	DefaultListen                  = ":8080"
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultBodyReadTimeout         = 30 * time.Second
	DefaultIdleTimeout             = 120 * time.Second
	DefaultMaxHeaderBytes          = 32 << 10
	DefaultShutdownTimeout         = 30 * time.Second
	DefaultMaxBodyBytes            = 4 << 20
	DefaultMaxJSONDepth            = 64
	DefaultMaxTokenBytes           = 8 << 10
	DefaultMaxResponseBytes        = 16 << 20
	DefaultRatePerIP               = 50
	DefaultRateBurst               = 100
	DefaultMaxSessionsPerPrincipal = 64
	DefaultMaxStreamsPerPrincipal  = 32
	DefaultMaxSessions             = 100000
	DefaultSessionIdleTimeout      = time.Hour
	DefaultClockSkew               = 60 * time.Second
	MaxClockSkew                   = 300 * time.Second
	DefaultJWKSRefreshInterval     = 15 * time.Minute
	DefaultJWKSMaxStale            = time.Hour
	DefaultUnknownKIDCooldown      = 30 * time.Second
	DefaultHTTPTimeout             = 5 * time.Second
	DefaultIntrospectionCacheTTL   = 60 * time.Second
	DefaultResponseHeaderTimeout   = 2 * time.Minute
	DefaultDialTimeout             = 5 * time.Second
)
