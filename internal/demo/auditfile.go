package demo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/audit"
)

// openAudit creates the demo's audit trail: a durable file sink in a
// temporary directory, its checkpoints signed by a key made for this run.
func (e *env) openAudit(log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "mcpgate-demo-")
	if err != nil {
		return fmt.Errorf("demo: audit directory: %w", err)
	}
	e.auditDir = dir
	e.shutdown = append(e.shutdown, func() { os.RemoveAll(dir) })
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("demo: audit key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("demo: audit key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("demo: audit key: %w", err)
	}
	keyFile := filepath.Join(dir, "audit-signing.pem")
	e.auditPub = filepath.Join(dir, "audit-signing.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("demo: audit key: %w", err)
	}
	if err := os.WriteFile(e.auditPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return fmt.Errorf("demo: audit key: %w", err)
	}
	sink, err := audit.OpenFileSink(audit.FileConfig{Path: e.auditFile(), Fsync: audit.FsyncAlways,
		SigningKeyFile: keyFile, CheckpointInterval: time.Second, Logger: log})
	if err != nil {
		return fmt.Errorf("demo: audit trail: %w", err)
	}
	e.records.file = sink
	return nil
}

func (e *env) auditFile() string { return filepath.Join(e.auditDir, "audit.jsonl") }

// expectAuditIntact verifies the run's own audit trail, then alters one
// record in a copy — the refused external mail turned into an allowed one —
// and shows that verification catches it.
func (e *env) expectAuditIntact() error {
	key, err := audit.LoadPublicKey(e.auditPub)
	if err != nil {
		return err
	}
	// A signed checkpoint now covers every record so far (mcpgate writes
	// one every checkpoint_interval, at rotation and at shutdown).
	if err := e.records.file.Checkpoint(context.Background()); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "    $ mcpgate audit verify %s --key %s\n", e.auditFile(), e.auditPub)
	rep, err := audit.Verify([]string{e.auditFile()}, []ed25519.PublicKey{key})
	if err != nil {
		return err
	}
	e.printReport(rep)
	if !rep.OK() {
		return errors.New("the demo's own audit trail does not verify")
	}

	b, err := os.ReadFile(e.auditFile())
	if err != nil {
		return err
	}
	lines := bytes.Split(b, []byte("\n"))
	altered := -1
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"decision":"deny"`)) && bytes.Contains(l, []byte(`"tool":"send_message"`)) {
			lines[i] = bytes.Replace(l, []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), 1)
			altered = i
			break
		}
	}
	if altered < 0 {
		return errors.New("the trail has no record of the refused mail")
	}
	copyFile := filepath.Join(e.auditDir, "audit-altered.jsonl")
	if err := os.WriteFile(copyFile, bytes.Join(lines, []byte("\n")), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "    Now a copy with line %d changed from \"decision\":\"deny\" to \"decision\":\"allow\":\n", altered+1)
	fmt.Fprintf(e.out, "    $ mcpgate audit verify %s --key %s\n", copyFile, e.auditPub)
	rep, err = audit.Verify([]string{copyFile}, []ed25519.PublicKey{key})
	if err != nil {
		return err
	}
	e.printReport(rep)
	if rep.OK() {
		return errors.New("verification did not notice the altered record")
	}
	return nil
}

func (e *env) printReport(rep *audit.Report) {
	var b strings.Builder
	rep.Write(&b)
	for l := range strings.Lines(b.String()) {
		fmt.Fprint(e.out, "    "+l)
	}
}
