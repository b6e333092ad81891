package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
)

const auditUsage = `usage: mcpgate audit verify FILE... --key PUBKEY [--key PUBKEY...] [--strict]

Checks the hash chain and the signed checkpoints of audit files (a rotated set
in any order). PUBKEY is the Ed25519 public key (PEM) of audit.signing_key_file;
give several for rotated keys. --strict also fails on records after the last
checkpoint and on an incomplete last line. Exit status: 0 intact, 1 tampered
or unreadable, 2 usage.
`

// auditCmd runs `mcpgate audit verify`. Flags may come before or after the
// files, as the usage line shows.
func auditCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	var files, keyFiles []string
	strict := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--key" || a == "-key":
			if i+1 == len(args) {
				fmt.Fprint(stderr, "mcpgate audit verify: --key needs a file\n\n"+auditUsage)
				return 2
			}
			i++
			keyFiles = append(keyFiles, args[i])
		case strings.HasPrefix(a, "--key=") || strings.HasPrefix(a, "-key="):
			keyFiles = append(keyFiles, a[strings.IndexByte(a, '=')+1:])
		case a == "--strict" || a == "-strict":
			strict = true
		case a == "-h" || a == "--help":
			fmt.Fprint(stdout, auditUsage)
			return 0
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(stderr, "mcpgate audit verify: unknown flag %s\n\n%s", a, auditUsage)
			return 2
		default:
			files = append(files, a)
		}
	}
	if len(files) == 0 || len(keyFiles) == 0 {
		fmt.Fprint(stderr, "mcpgate audit verify: at least one FILE and one --key are required\n\n"+auditUsage)
		return 2
	}
	var keys []ed25519.PublicKey
	for _, f := range keyFiles {
		k, err := audit.LoadPublicKey(f)
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate audit verify: %v\n", err)
			return 2
		}
		keys = append(keys, k)
	}
	rep, err := audit.Verify(files, keys)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate audit verify: %v\n", err)
		return 1
	}
	rep.Write(stdout)
	switch {
	case !rep.OK():
		return 1
	case strict && (rep.UnsignedTail > 0 || rep.IncompleteTail):
		fmt.Fprintln(stdout, "FAILED (--strict): the end of the trail is not covered by a signed checkpoint")
		return 1
	}
	return 0
}
