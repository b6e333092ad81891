package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/secret"
)

const revokeUsage = `usage:
  mcpgate revoke jti|subject|client VALUE --issuer ISSUER [--not-before TIME] [--until TIME] [--reason TEXT]
  mcpgate revoke list
  mcpgate revoke remove jti|subject|client VALUE --issuer ISSUER
common flags: --admin URL (default http://127.0.0.1:9090), --token-file FILE (the admin
bearer secret, admin.bearer_token_file). TIME is RFC 3339; --not-before defaults to now
(subject and client: tokens issued before it are refused). The revocation applies on
the very next request and ends the token's open streams. Exit status: 0 done, 1 refused,
2 usage.
`

// revokeCmd talks to a running mcpgate's admin API.
func revokeCmd(args []string, stdout, stderr io.Writer) int {
	flags := map[string]string{"admin": "http://127.0.0.1:9090"}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "admin", "token-file", "issuer", "not-before", "until", "reason":
		case "h", "help":
			fmt.Fprint(stdout, revokeUsage)
			return 0
		default:
			fmt.Fprintf(stderr, "mcpgate revoke: unknown flag %s\n\n%s", a, revokeUsage)
			return 2
		}
		if !hasVal {
			if i+1 == len(args) {
				fmt.Fprintf(stderr, "mcpgate revoke: --%s needs a value\n", name)
				return 2
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	if flags["token-file"] == "" || len(pos) == 0 {
		fmt.Fprint(stderr, revokeUsage)
		return 2
	}
	tok, err := secret.ReadFile(flags["token-file"])
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate revoke: %v\n", err)
		return 2
	}
	call := func(method, path string, body any) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, strings.TrimRight(flags["admin"], "/")+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+string(tok))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, b, err
	}
	report := func(code int, b []byte, err error, want int) int {
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate revoke: %v\n", err)
			return 1
		}
		if code != want {
			fmt.Fprintf(stderr, "mcpgate revoke: the admin API answered %d: %s\n", code, bytes.TrimSpace(b))
			return 1
		}
		if len(b) > 0 {
			fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(b))
		}
		return 0
	}
	kindValue := func(p []string) (string, string, bool) {
		if len(p) != 2 || (p[0] != "jti" && p[0] != "subject" && p[0] != "client") || flags["issuer"] == "" {
			fmt.Fprint(stderr, revokeUsage)
			return "", "", false
		}
		return p[0], p[1], true
	}
	switch pos[0] {
	case "list":
		code, b, err := call(http.MethodGet, "/admin/revocations", nil)
		return report(code, b, err, http.StatusOK)
	case "remove":
		kind, value, ok := kindValue(pos[1:])
		if !ok {
			return 2
		}
		q := url.Values{"kind": {kind}, "issuer": {flags["issuer"]}, "value": {value}}
		code, b, err := call(http.MethodDelete, "/admin/revocations?"+q.Encode(), nil)
		return report(code, b, err, http.StatusNoContent)
	}
	kind, value, ok := kindValue(pos)
	if !ok {
		return 2
	}
	e := map[string]any{"kind": kind, "issuer": flags["issuer"], "value": value, "reason": flags["reason"]}
	for _, f := range []string{"not-before", "until"} {
		if v := flags[f]; v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fmt.Fprintf(stderr, "mcpgate revoke: --%s: %v\n", f, err)
				return 2
			}
			e[strings.ReplaceAll(f, "-", "_")] = t
		}
	}
	if _, set := e["not_before"]; !set && kind != "jti" {
		e["not_before"] = time.Now()
	}
	code, b, err := call(http.MethodPost, "/admin/revocations", e)
	return report(code, b, err, http.StatusCreated)
}
