package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestStory runs the demo as `mcpgate demo` does: every step must behave.
func TestStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, Options{Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"DEVELOPMENT ONLY",
		`WWW-Authenticate: Bearer resource_metadata="`,
		"code_challenge_method=S256",
		"typ=at+jwt",
		`error="invalid_token"`,
		"docs server received: iss=",
		"act.sub=",
		"[REDACTED:aws_access_key]",
		"finding=result:aws_access_key:redact",
		"upstream_credential=mint:",
		"reason=insufficient_scope",
		"rule=seq:no-external-mail-after-private-read",
		`send_message(ceo@example.com) → "sent to ceo@example.com"`,
		"$ mcpgate audit verify ",
		"OK: ",
		"TAMPERED: ",
		"the record was modified",
		"Every step behaved as it must.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the story does not show %q:\n%s", want, out.String())
		}
	}
}

// TestStoryChecksOutcomes runs the same story with mcpgate's audience check
// switched off: the step that relies on it must fail, and so must the demo.
// The story checks what happens; it does not only print it.
func TestStoryChecksOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := Run(ctx, Options{Out: &out, InsecureSkipAudienceCheck: true})
	if err == nil {
		t.Fatalf("the demo passed with the audience check off:\n%s", out.String())
	}
	if !strings.Contains(err.Error(), "audience binding") || !strings.Contains(out.String(), "The demo FAILED") {
		t.Errorf("the demo failed for another reason than the audience step: %v\n%s", err, out.String())
	}
}
