// Package anomaly keeps cheap behavioural baselines of the principals and
// routes that call MCP servers through the gateway, and flags requests that
// depart sharply from them: a burst of calls, a storm of denials, a sudden
// spread over many tools, the first use of a tool, or a churn of tokens.
//
// The gateway calls [Detector.Observe] once per decided MCP request, with
// the principal (issuer, subject and client_id, an opaque string that is
// hashed and never stored, logged or returned), the route, the tool of a
// tools/call, whether the request was denied, and a fingerprint of the
// token. Before deciding a request it may call [Detector.Check], which
// reports an active deny cool-down or step-up requirement of the principal.
//
// # Model
//
// Each principal and each route has a sliding window of [Config.Window]
// (default one minute) made of six fixed ticks (ten seconds by default):
// the current tick and the five before it, so the window spans between
// five sixths of Window and Window. In the window it counts calls, denied calls, distinct tools and (for a
// principal) distinct token fingerprints. When a tick closes, the window's
// values are folded into exponentially weighted moving averages with a
// half-life of [Config.HalfLife] (30 minutes): the baseline. Only windows
// with at least one call are folded, so a baseline describes the
// behaviour of its principal while active, and idling neither erodes it
// nor makes the next working session look like a burst. Until enough
// windows are folded, the average is a plain mean, so that a young
// baseline is not biased towards zero.
//
// A baseline is warm once it has folded [Config.WarmUp] worth of active
// ticks (10 minutes). Nothing is raised before. After, a value of the
// current window raises an [Anomaly] when it exceeds the baseline times a
// factor and also an absolute floor:
//
//   - call_rate: calls in the window ≥ MinCalls and > RateFactor × baseline.
//   - denial_rate: denied fraction > DenialFactor × baseline fraction,
//     and denied calls beyond those the baseline fraction predicts ≥
//     MinDenials (so that a busy principal with a usual few percent of
//     denials does not flag on noise).
//   - distinct_tools: tools in the window ≥ MinTools and > ToolsFactor ×
//     baseline.
//   - new_tool: a tool this principal (or route) has never called before.
//     It has no factor: every tool learnt during warm-up is known.
//   - token_churn (principal only): distinct token fingerprints in the
//     window > MaxChurn, or ≥ MinChurn and > ChurnFactor × baseline.
//
// Each kind is raised at most once per two windows per principal (and per
// route): a burst one window long stays in the sliding window for up to
// two, and raises once; a sustained anomaly is raised again every two
// windows. An anomaly carries the configured action: "none" (flag only),
// "step_up" (the principal must present a token with
// [Config.StepUpScope]) or "deny". Step-up and deny last
// [Config.CoolDown]; during a deny cool-down Observe records nothing and
// returns the cool-down again, so that refused requests neither feed the
// baselines nor raise more anomalies.
//
// Route-scope anomalies aggregate every principal of a route. Their action
// is [Config.RouteAction], "none" unless configured, because denying a
// whole route lets one misbehaving principal deny service to all the
// others.
//
// # Memory
//
// Principals are kept in 64 shards (fewer for small limits), each with its
// own lock and least-recently-seen list; at most [Config.MaxPrincipals]
// are tracked and the least recently seen of a shard is evicted first. A
// tracked principal costs about 300 bytes, map entry included, with three
// tools and one token (TestBytesPerPrincipal measures it), about 30 MB
// at the default limit; each further tool it has used costs 8 bytes (at
// most 256 are remembered; beyond, the least recently used is forgotten
// and new_tool is no longer raised for that principal), each token in
// the window 8 bytes (at most MaxChurn+1). Active
// cool-downs are kept apart from the baselines, so that evicting a
// baseline never lifts a cool-down. Routes are expected to be configured,
// so few; at most 4096 are tracked, with at most 4096 tools each.
//
// Map keys are 64-bit hashes under a seed drawn per Detector, tools and
// tokens 32-bit hashes: collisions are possible but unpredictable to an
// attacker, and merge two baselines rather than fail open.
package anomaly
