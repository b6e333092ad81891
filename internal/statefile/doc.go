// Package statefile holds what the small state files several processes
// share (tool pins, revocations) need from the operating system: an
// advisory lock on <file>.lock, the ownership and permission checks of a
// file replaced by rename, and a durable rename.
package statefile
