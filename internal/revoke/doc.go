// Package revoke keeps the list of revoked access tokens that the gateway
// checks on every request, from memory.
//
// An operator (through the admin API or the CLI, both built on this
// package) revokes:
//
//   - one token, by its jti claim, scoped by issuer ([KindJTI]). The entry
//     lives until the token's expiry (Entry.Until; when unknown, now plus
//     Config.MaxTokenLifetime).
//   - every token of a subject (issuer and sub, [KindSubject]) or of a
//     client (issuer and client_id, [KindClient]) issued before a
//     not-before time (default now). The entry lives until NotBefore plus
//     MaxTokenLifetime, after which no token issued before NotBefore can
//     still be valid; a later Until given by the caller is kept.
//
// [List.Check] is the hot path: at most three map lookups in an immutable
// snapshot published through an atomic pointer, no lock, no allocation. A
// token whose iat is strictly before a subject or client entry's NotBefore
// is revoked; so is a token without iat (fail closed). Because iat has
// whole-second precision and is rounded down, every token issued before
// NotBefore has an iat strictly before it. A token without jti is matched
// by subject and client entries only.
//
// Writers (Add, Remove, Sweep, Reload) are serialized and replace the
// snapshot, which costs time proportional to the number of entries;
// revocations are rare next to checks. Expired entries are dropped lazily:
// on every write and by [List.Sweep]; no goroutine is started. Check never
// reports an expired entry, swept or not.
//
// # Persistence
//
// With Config.File set, the list is kept in a JSON file:
//
//	{
//	  "version": 1,
//	  "entries": [
//	    {"kind": "subject", "issuer": "https://idp.example", "value": "alice",
//	     "not_before": "2026-05-02T09:30:00Z", "until": "2026-05-03T09:30:00Z",
//	     "created": "2026-05-02T09:30:00Z", "reason": "laptop stolen"}
//	  ]
//	}
//
// The file is the source of truth shared by gateway replicas and the CLI.
// Every Add and Remove takes an exclusive flock(2) on the file's path plus
// ".lock", re-reads the file, applies its change, writes the result
// atomically (temporary file mode 0600, fsync, rename, directory fsync) and
// only then publishes it in memory. So a revocation written by another
// process is never overwritten, and a write that fails changes nothing in
// memory. [List.Reload] (on a file change) replaces the in-memory set with
// the file's. New creates a missing file (empty); a file missing later is
// an error, never an empty list.
//
// The reader is strict: an unknown member, trailing data, a version other
// than 1, a duplicate key, an invalid entry or a file writable by group or
// others is refused ([ErrCorrupt], [ErrInsecureFile]): New fails and Reload
// keeps the set it had. Expired entries in the file are skipped.
//
// Subscribers ([List.Subscribe]) are told of every entry that an Add
// created or changed, and of every entry a Reload (or a write's re-read of
// the file) brought in or tightened, so the gateway can close the open
// streams of tokens that are now revoked.
package revoke
