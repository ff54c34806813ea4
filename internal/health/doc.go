// Package health keeps, for every storage node a process talks to, a view of
// whether calls to it are worth making: up, suspect or down. Gateways and
// the scrubber consult it before every node call (through
// internal/nodeaccess, which wraps the node API with it), so that a dead
// node costs nothing once detected and a slow one does not set the tail
// latency.
//
// Three signals feed a node's state:
//
//   - Heartbeats: Run probes every tracked node each Interval (on the
//     Config's clock: Now and After), with a Timeout deadline; Heartbeat
//     runs one round and waits for it.
//   - Passive outcomes: every call made through Begin reports how it ended
//     (Call.End). A node that answered, even with "not found", is alive;
//     connection failures, timeouts and 5xx answers count against it;
//     calls the caller itself cancelled count for nothing.
//   - A circuit breaker per node (sony/gobreaker): TripAfter consecutive
//     failures open it, and while it is open Begin refuses calls at once
//     (ErrOpen). After OpenFor it lets one probe through (half-open),
//     usually the next heartbeat; success closes it, failure opens it again.
//
// A caller about to refuse work because nodes are marked down can ask
// them at once (Check): a node that answers has its breaker closed on the
// spot, for every caller, instead of after OpenFor and a heartbeat.
//
// The state is Down while the breaker is open, Suspect while it is
// half-open or the last heartbeat or call failed, and Up otherwise. Changes
// are logged and exported as Prometheus metrics on the registry given in
// the Config (never the global one).
//
// The tracker also keeps each node's recent call latencies (a sliding
// window of the last few hundred successful calls) so that readers can
// hedge: HedgeDelay is the node's p95, clamped to [HedgeFloor, HedgeCap].
// A sliding window rather than a decaying histogram because the question
// asked on every shard fetch is "is this call slower than this node
// usually is right now", and a window answers it exactly and forgets a
// recovered node's bad minute within a few hundred calls.
//
// health decides nothing about data: it never retries, never picks
// replicas and never talks to nodes except through the Probe it is given.
// It must not import the storage node packages, so that any process can
// use it with whatever client it has.
package health
