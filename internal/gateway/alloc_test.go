//go:build !race

// The race detector drops sync.Pool items at random, so allocation
// counts are only meaningful without it: scripts/test runs this file's
// test in a separate step without -race.

package gateway

import "testing"

// maxOwnAllocs is the budget of allocations per cached-token tools/call in
// mcpgate's own code: the whole pipeline minus a bare reverse proxy's
// request on the same scaffolding.
const maxOwnAllocs = 40

func TestHotPathAllocationBudget(t *testing.T) {
	gw, bare := hotPath(t), bareProxy(t)
	own := testing.AllocsPerRun(200, func() { gw() }) - testing.AllocsPerRun(200, func() { bare() })
	t.Logf("allocations per request in mcpgate's own code: %.0f (budget %d)", own, maxOwnAllocs)
	if own > maxOwnAllocs {
		t.Errorf("a cached-token tools/call makes %.0f allocations in mcpgate's own code, over the budget of %d; profile with\n"+
			"  go test ./internal/gateway -run '^$' -bench 'ServeHTTP$' -memprofile mem.out -memprofilerate 1", own, maxOwnAllocs)
	}
}
