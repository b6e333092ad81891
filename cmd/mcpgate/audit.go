package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
)

const auditUsage = `usage: mcpgate audit verify FILE... --key PUBKEY [--key PUBKEY...] [--from-seq N] [--strict]

Checks the hash chain and the signed checkpoints of audit files (a rotated set
in any order). PUBKEY is the Ed25519 public key (PEM) of audit.signing_key_file;
give several for rotated keys. The trail must start at seq 1 unless --from-seq
names where it starts (older files expired on purpose). --strict also fails
unless the trail ends with mcpgate's shutdown checkpoint (no records after the
last checkpoint, no incomplete last line). Exit status: 0 intact, 1 tampered,
truncated or unreadable, 2 usage.
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
	var fromSeq uint64
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
		case a == "--from-seq" || strings.HasPrefix(a, "--from-seq="):
			v, ok := strings.CutPrefix(a, "--from-seq=")
			if !ok {
				if i+1 == len(args) {
					fmt.Fprint(stderr, "mcpgate audit verify: --from-seq needs a number\n\n"+auditUsage)
					return 2
				}
				i++
				v = args[i]
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				fmt.Fprintf(stderr, "mcpgate audit verify: --from-seq %q is not a positive number\n", v)
				return 2
			}
			fromSeq = n
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
	rep, err := audit.VerifyWith(files, keys, audit.VerifyOptions{FromSeq: fromSeq})
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate audit verify: %v\n", err)
		return 1
	}
	rep.Write(stdout)
	switch {
	case !rep.OK():
		return 1
	case strict && (rep.UnsignedTail > 0 || rep.IncompleteTail || rep.EndReason != audit.ReasonShutdown):
		fmt.Fprintln(stdout, "FAILED (--strict): the end of the trail is not covered by a signed checkpoint")
		return 1
	}
	return 0
}
