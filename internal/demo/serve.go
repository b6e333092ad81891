package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// printServeHelp tells the user how to use the running demo.
func (e *env) printServeHelp() {
	tokenEndpoint := e.idp.Issuer() + "/oauth/token"
	if resp, err := http.Get(e.idp.Issuer() + "/.well-known/oauth-authorization-server"); err == nil {
		var md struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		if json.NewDecoder(resp.Body).Decode(&md) == nil && md.TokenEndpoint != "" {
			tokenEndpoint = md.TokenEndpoint
		}
		resp.Body.Close()
	}
	fmt.Fprintf(e.out, `
Everything keeps running (Ctrl-C to stop).

  mcpgate         %[1]s
    docs route    %[2]s   (needs docs:read; update_document needs docs:write)
    mail route    %[3]s   (needs mail:send)
  auth server     %[4]s   (development only)
    user          %[5]s / %[6]s
    client        %[7]s / %[8]s   (client credentials)

Connect any MCP client to a route URL. With the MCP Inspector:
  npx @modelcontextprotocol/inspector
  → Transport "Streamable HTTP", URL %[2]s, then "Open Auth Settings" / "Quick OAuth Flow":
    it discovers the metadata, registers itself and sends you to the login page.

Get a token with curl (client credentials) and call the docs server:
  TOKEN=$(curl -s -u %[7]s:%[8]s -d grant_type=client_credentials \
      -d scope=docs:read --data-urlencode resource=%[2]s %[9]s | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -s %[2]s -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -d '%[10]s'
`, e.gateway, e.docsURL, e.mailURL, e.idp.Issuer(), demoUser, demoPassword, cliClientID, cliSecret, tokenEndpoint,
		strings.ReplaceAll(initializeBody, "'", ""))
	fmt.Fprintln(e.out, "\nAudit records follow as JSON lines.")
	e.records.follow(e.out)
}
