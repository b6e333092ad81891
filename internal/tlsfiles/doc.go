// Package tlsfiles builds TLS configurations from PEM files: one for
// mcpgate's client-facing listener ([ServerConfig]) and one per upstream
// route ([ClientConfig]: a pinned CA, an optional client certificate for
// mutual TLS and an optional server-name override).
//
// # Rotation
//
// A certificate and its key are a [Pair], which re-reads its files when they
// change, without a restart. On a handshake, at most once per
// PairConfig.CheckInterval, both files are stat'ed, following symlinks.
// Their size, modification time and, on Unix, inode and device (and, on
// Linux, change time) are compared with those of the files last read. So a
// Kubernetes secret mount or cert-manager, which rotate by swapping a
// "..data" symlink to a new directory, is noticed even when the new files
// are older than the old ones or exactly as large. On other systems only
// size and modification time are compared; call [Pair.Reload] (on SIGHUP,
// say) there, or on file systems with coarse timestamps.
//
// A new pair is installed only if it is whole: the certificate and key parse,
// the key matches the leaf, every certificate in the chain parses, and the
// leaf has not already expired while the current one is still valid.
// Otherwise the last good pair keeps serving, and the failure is logged once
// (again only when it changes). A writer that replaces the two files one at a
// time is therefore seen as a mismatched pair first and as the new pair as
// soon as the second file lands. The swap is atomic: a handshake sees either
// the old pair or the new one. Concurrent handshakes never reload
// concurrently; while one reloads, the others use the current pair without
// waiting. Nothing is ever logged or returned that contains key material.
//
// Sessions resumed from a ticket skip certificate selection, so a client may
// resume with the old certificate until its ticket expires; new handshakes
// get the new one.
//
// # What is read once
//
// The CA bundle of [ClientConfig] is read once, when the configuration is
// built: pinning a new CA needs a new configuration (a config reload or a
// restart). Its client certificate, if any, is a [Pair] and reloads like the
// listener's.
package tlsfiles
