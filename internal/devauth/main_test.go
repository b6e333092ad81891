package devauth

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain silences zitadel's op package, which logs request errors to the
// process's default logger (TestNoSecretsInLogs captures it instead).
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
