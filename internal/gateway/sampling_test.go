//lint:file-ignore SA1019 sampling is deprecated from MCP 2026-07-28 on, but it is part of 2025-06-18 and 2025-11-25, which the gateway carries and must prove.

package gateway

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// addSamplingTool adds "sample", a tool that asks the client's model
// (sampling/createMessage) and returns "sampled: <answer>".
func addSamplingTool(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "sample", Description: "asks the client's model (sampling)"},
		func(ctx context.Context, req *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 16,
				Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: a.Text}}}})
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sampled: " + res.Content.(*mcp.TextContent).Text}}}, nil, nil
		})
}

// samplingClientOptions answers sampling with "pong" and elicitation with
// accept {"answer": "42"}.
func samplingClientOptions() *mcp.ClientOptions {
	return &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "pong"}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "42"}}, nil
		},
	}
}
