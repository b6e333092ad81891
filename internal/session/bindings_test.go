package session_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/internal/session"
	"github.com/mcpgate/mcpgate/internal/session/sessiontest"
)

// TestMemoryBindings runs the conformance suite on the in-memory store.
func TestMemoryBindings(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, _ *sessiontest.Clock, cfg session.Config) session.Bindings {
		return session.New(cfg).Bindings()
	})
}
