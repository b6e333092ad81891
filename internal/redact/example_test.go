package redact_test

import (
	"fmt"

	"github.com/mcpgate/mcpgate/internal/redact"
)

func Example() {
	s, err := redact.New(redact.Config{
		Actions:  map[string]redact.Action{"private_key": redact.ActionBlock},
		Patterns: []redact.Pattern{{Name: "acme_ticket", Regex: `ACME-TKT-(?P<secret>[0-9a-f]{12})`}},
	})
	if err != nil {
		panic(err)
	}
	// The token the client presented, and an ordinary argument.
	live := []string{"opaque-client-token-2f9c41"}
	msg := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch",` +
		`"arguments":{"url":"postgres://app:hunter2hunter2@db:5432/app","note":"my token is opaque-client-token-2f9c41",` +
		`"ticket":"ACME-TKT-0123456789ab"}}}`)
	res, err := s.ScanJSON(msg, live)
	if err != nil {
		panic(err) // not JSON: refuse the message
	}
	fmt.Println(string(res.Out))
	fmt.Printf("changed=%v blocked=%v\n", res.Changed, res.Blocked)
	for _, f := range res.Findings {
		fmt.Println(f.Detector, f.Action, f.Count)
	}
	// Output:
	// {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"url":"postgres://app:[REDACTED:connection_string]@db:5432/app","note":"my token is [REDACTED:live_credential]","ticket":"ACME-TKT-[REDACTED:acme_ticket]"}}}
	// changed=true blocked=false
	// acme_ticket redact 1
	// connection_string redact 1
	// live_credential redact 1
}
