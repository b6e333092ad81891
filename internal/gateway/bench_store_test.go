package gateway

import (
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/redistest"
	"github.com/mcpgate/mcpgate/internal/testissuer"
)

// BenchmarkServeHTTPStore is one cached-token tools/call decided by
// sequence rules (order, budget, a history scan) with the in-process store
// and with a Redis store (a real redis-server on loopback, started by the
// benchmark): the per-call cost of sharing state between replicas. The
// Redis case is one round trip per call (the update script) plus the
// client-side cached revocation check. Compare within one run:
//
//	go test ./internal/gateway -run '^$' -bench ServeHTTPStore -count 6
func BenchmarkServeHTTPStore(b *testing.B) {
	srv := redistest.Start(b)
	for i, name := range []string{"memory", "redis"} {
		b.Run("store="+name, func(b *testing.B) {
			iss := testissuer.New(b, testissuer.Options{})
			cfg := testConfig(benchBase, iss.URL(), "http://docs.upstream.test/mcp", "http://mail.upstream.test/mcp")
			rulesRoute(cfg)
			cfg.Sequence.History.MaxEntries = 100
			cfg.Sequence.Rules = []config.SequenceRule{
				{ID: "after-prep", Order: &config.OrderRule{Call: config.Match{Tools: []string{"search"}}, After: &config.Match{Tools: []string{"prep"}}}},
				{ID: "budget", Budget: &config.BudgetRule{Match: config.Match{Tools: []string{"search"}}, Max: 10000, Window: config.Duration(time.Second), Per: "subject"}},
				{ID: "scan", When: `call.tool == "search" && session.history.exists(e, e.tool == "forbidden")`},
			}
			if name == "redis" {
				cfg.Store = config.Store{URL: srv.URL(), PasswordFile: srv.PasswordFile, KeyPrefix: "bench" + strconv.Itoa(i) + ":",
					Timeout: config.Duration(time.Second)}
			}
			up := newStubUpstream()
			g := benchGateway(b, cfg, up)
			b.Cleanup(func() { g.Close() })
			c := newBenchRequest(g, docsURL, iss.Mint(aliceClaims(docsURL, "docs:read search:q")), v1125)
			c.mustServe(b, "warm-up", []byte(toolsCall(7, "prep", `{"text":"q"}`)), stubCallResult)
			timeCalls(b, c, up, benchCall, stubCallResult)
		})
	}
}
