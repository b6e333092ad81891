package credential

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/secret"
)

// StaticConfig configures the fixed header value an upstream receives.
type StaticConfig struct {
	// Header is the header to set. Default "Authorization". Hop-by-hop,
	// framing, cookie, Host and MCP transport (Mcp-*) headers are refused.
	Header string
	// ValueFile holds the header value, used verbatim ("Bearer …", an API
	// key). It must not be accessible by other users; it is re-read when
	// it changes.
	ValueFile string
	// Value is a literal header value, refused unless AllowLiteral.
	Value string
	// AllowLiteral permits Value (the development flag).
	AllowLiteral bool
	// WatchInterval is how often ValueFile is checked for changes
	// (default secret.DefaultWatchInterval).
	WatchInterval time.Duration
	// Now replaces time.Now for the file checks (for tests).
	Now func() time.Time
}

// Static is the ModeStatic Source: the same header value for every call.
type Static struct {
	header string
	file   *secret.File               // nil for a literal
	cur    atomic.Pointer[staticCred] // the credential for the file's version
}

type staticCred struct {
	version uint64
	cred    Credential
	err     error
}

var _ Source = (*Static)(nil)

// staticRefusedHeader says why the canonical header h cannot carry a
// credential, or "" when it can: hop-by-hop and framing headers, and
// headers the gateway owns.
func staticRefusedHeader(h string) string {
	switch h {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return "a hop-by-hop header"
	case "Content-Length", "Content-Type", "Content-Encoding", "Expect":
		return "a framing header"
	case "Cookie", "Set-Cookie":
		return "a cookie header"
	case "Host":
		return "the request's target"
	case "Accept", "User-Agent":
		return "set by the gateway"
	}
	if strings.HasPrefix(h, "Mcp-") {
		return "an MCP transport header"
	}
	return ""
}

// NewStatic validates cfg and, for a file, reads it once.
func NewStatic(cfg StaticConfig) (*Static, error) {
	if cfg.Header == "" {
		cfg.Header = "Authorization"
	}
	var errs []error
	header, err := checkStaticHeader(cfg.Header)
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case cfg.ValueFile != "" && cfg.Value != "":
		errs = append(errs, errors.New("credential: static: set either a value file or a value, not both"))
	case cfg.ValueFile == "" && cfg.Value == "":
		errs = append(errs, errors.New("credential: static: a value file is required"))
	case cfg.Value != "" && !cfg.AllowLiteral:
		errs = append(errs, errors.New("credential: static: a literal value needs the development flag allowing secret literals; use a value file"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	s := &Static{header: header}
	if cfg.ValueFile == "" {
		c, err := newStaticCred(header, []byte(strings.TrimSpace(cfg.Value)))
		if err != nil {
			return nil, fmt.Errorf("credential: static value: %w", err)
		}
		s.cur.Store(&staticCred{cred: c})
		return s, nil
	}
	opts := []secret.WatchOption{secret.WithClock(cfg.Now)}
	if cfg.WatchInterval != 0 {
		opts = append(opts, secret.WithInterval(cfg.WatchInterval))
	}
	if s.file, err = secret.Watch(cfg.ValueFile, opts...); err != nil {
		return nil, fmt.Errorf("credential: static value: %w", err)
	}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkStaticHeader returns the canonical header name, or why it cannot
// carry a credential.
func checkStaticHeader(h string) (string, error) {
	if h == "" || strings.ContainsFunc(h, func(r rune) bool { return !staticTokenChar(r) }) {
		return "", fmt.Errorf("credential: static: %q is not a valid header name", h)
	}
	c := textproto.CanonicalMIMEHeaderKey(h)
	if why := staticRefusedHeader(c); why != "" {
		return "", fmt.Errorf("credential: static: %q cannot carry a credential: it is %s", h, why)
	}
	return c, nil
}

// staticTokenChar reports whether r is an RFC 9110 tchar.
func staticTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r < 0x80 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// MinSecretLen is the shortest static secret accepted: the gateway removes
// echoes of live credentials by exact match, which it does only for values
// at least this long.
const MinSecretLen = 8

// newStaticCred builds the credential for value. Errors never contain the
// value.
func newStaticCred(header string, value []byte) (Credential, error) {
	if len(value) == 0 {
		return Credential{}, errors.New("the value is empty")
	}
	for i, c := range value {
		if c < 0x20 || c == 0x7f {
			return Credential{}, fmt.Errorf("the value has a control character at byte %d; a header value is one line of text", i)
		}
	}
	v := string(value)
	sec := staticSecret(v)
	if len(sec) < MinSecretLen {
		return Credential{}, fmt.Errorf("the value is shorter than %d bytes: too short to be told apart from ordinary text, so echoes of it could not be redacted", MinSecretLen)
	}
	return Credential{Header: header, Value: v, Secret: sec, ID: shortHash(sec)}, nil
}

// staticSecret strips a leading Bearer or Basic scheme, so the secret is
// the token itself.
func staticSecret(v string) string {
	for _, scheme := range []string{"Bearer ", "Basic "} {
		if len(v) > len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
			if rest := strings.TrimLeft(v[len(scheme):], " "); rest != "" {
				return rest
			}
		}
	}
	return v
}

// load returns the credential for the file's current content.
func (s *Static) load() (Credential, error) {
	b, ver, err := s.file.Current()
	if err != nil {
		return Credential{}, &Error{Kind: Unavailable, Message: "the static credential for this upstream cannot be read", Err: err}
	}
	if c := s.cur.Load(); c != nil && c.version == ver {
		return c.cred, c.err
	}
	c := &staticCred{version: ver}
	if c.cred, err = newStaticCred(s.header, b); err != nil {
		c.cred = Credential{}
		c.err = &Error{Kind: Unavailable, Message: "the static credential for this upstream is not a valid header value",
			Err: fmt.Errorf("%s: %w", s.file.Path(), err)}
	}
	s.cur.Store(c)
	return c.cred, c.err
}

// Credential returns the header value; a file's new content is used from
// the first call after the watch interval. The caller is not consulted.
func (s *Static) Credential(_ context.Context, _ Caller) (Credential, error) {
	if s.file == nil {
		return s.cur.Load().cred, nil
	}
	return s.load()
}
