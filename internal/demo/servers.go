package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The demo's two MCP servers are ordinary go-sdk servers that know nothing
// about OAuth: mcpgate protects them.

// docsStore is the "docs" server's private documents.
type docsStore struct {
	mu   sync.Mutex // guards docs
	docs map[string]string
}

// newDocsServer returns the docs server; deployKey is planted in its
// "deploy-notes" document, as careless notes often hold one.
func newDocsServer(deployKey string) *mcp.Server {
	st := &docsStore{docs: map[string]string{
		"roadmap":      "Q3: launch the EU region. Q4: acquire Initech (confidential).",
		"handbook":     "Be kind. Ship small changes. Write tests first.",
		"salaries":     "CONFIDENTIAL: engineering salary bands for next year.",
		"deploy-notes": "Deploy with: aws configure set aws_access_key_id " + deployKey,
	}}
	s := mcp.NewServer(&mcp.Implementation{Name: "docs", Title: "Private documents", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name: "list_documents", Description: "List the documents.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		var names []string
		for n := range st.docs {
			names = append(names, n)
		}
		slices.Sort(names)
		return text(strings.Join(names, ", ")), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name: "read_document", Description: "Read one document.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, a struct {
		Name string `json:"name" jsonschema:"the document to read"`
	}) (*mcp.CallToolResult, any, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		d, ok := st.docs[a.Name]
		if !ok {
			return nil, nil, fmt.Errorf("no document %q", a.Name)
		}
		return text(d), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name: "update_document", Description: "Replace a document's text.",
	}, func(ctx context.Context, req *mcp.CallToolRequest, a struct {
		Name string `json:"name" jsonschema:"the document to write"`
		Text string `json:"text" jsonschema:"the new text"`
	}) (*mcp.CallToolResult, any, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.docs[a.Name] = a.Text
		return text("updated " + a.Name), nil, nil
	})
	return s
}

// outbox is the "mail" server's sent messages.
type outbox struct {
	mu   sync.Mutex // guards sent
	sent []string
}

func newMailServer() *mcp.Server {
	ob := &outbox{}
	s := mcp.NewServer(&mcp.Implementation{Name: "mail", Title: "Outbound mail", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name: "send_message", Description: "Send an e-mail to anyone, inside or outside the company.",
		Annotations: &mcp.ToolAnnotations{OpenWorldHint: ptr(true)},
	}, func(ctx context.Context, req *mcp.CallToolRequest, a struct {
		To      string `json:"to" jsonschema:"recipient address"`
		Subject string `json:"subject"`
		Body    string `json:"body"`
	}) (*mcp.CallToolResult, any, error) {
		ob.mu.Lock()
		defer ob.mu.Unlock()
		ob.sent = append(ob.sent, a.To+": "+a.Subject)
		return text("sent to " + a.To), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name: "list_outbox", Description: "List sent messages.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		ob.mu.Lock()
		defer ob.mu.Unlock()
		return text(strings.Join(ob.sent, "\n")), nil, nil
	})
	return s
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func ptr[T any](v T) *T { return &v }
