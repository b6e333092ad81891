package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// TestAuditVerify runs `mcpgate audit verify` on a trail written by the
// file sink: intact (0), tampered (1), usage errors (2), --strict.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile, pubFile := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der}), 0o600)
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	file := filepath.Join(dir, "audit.jsonl")
	sink, err := audit.OpenFileSink(audit.FileConfig{Path: file, SigningKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{audit.Allow, audit.Deny, audit.Allow} {
		if err := sink.Write(context.Background(), &audit.Event{Kind: audit.KindDecision, Decision: d, RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	tampered := filepath.Join(dir, "tampered.jsonl")
	os.WriteFile(tampered, bytes.Replace(b, []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), 1), 0o600)
	headless := filepath.Join(dir, "headless.jsonl")
	all := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(headless, bytes.Join(all[2:], nil), 0o600) // the first two records cut off
	unsigned := filepath.Join(dir, "unsigned.jsonl")
	lines := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(unsigned, bytes.Join(lines[:len(lines)-2], nil), 0o600) // the shutdown checkpoint cut off

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"intact", []string{"verify", file, "--key", pubFile}, 0, "OK: 5 records"},
		{"key first", []string{"verify", "--key=" + pubFile, file}, 0, "OK: "},
		{"tampered", []string{"verify", tampered, "--key", pubFile}, 1, "TAMPERED: "},
		{"unsigned tail", []string{"verify", unsigned, "--key", pubFile}, 0, "not covered by a signature"},
		{"unsigned tail, strict", []string{"verify", unsigned, "--key", pubFile, "--strict"}, 1, "FAILED (--strict)"},
		{"start cut off", []string{"verify", headless, "--key", pubFile}, 1, "--from-seq"},
		{"start expired on purpose", []string{"verify", headless, "--key", pubFile, "--from-seq", "3"}, 0, "OK: "},
		{"intact, strict", []string{"verify", file, "--key", pubFile, "--strict"}, 0, "OK: "},
		{"no key", []string{"verify", file}, 2, "at least one FILE and one --key"},
		{"no command", []string{}, 2, "usage: mcpgate audit verify"},
		{"unknown flag", []string{"verify", file, "--key", pubFile, "--fast"}, 2, "unknown flag --fast"},
		{"missing file", []string{"verify", filepath.Join(dir, "nope"), "--key", pubFile}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"audit"}, tc.args...), &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
				t.Fatalf("exit %d, want %d; output %q %q, want %q", code, tc.code, out.String(), errb.String(), tc.want)
			}
		})
	}
}
