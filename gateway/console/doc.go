// Package console serves a gateway's console: one server-rendered HTML
// page (html/template, with its stylesheet and a small refresh script
// embedded in the binary) that shows the state of the cluster to people,
// on a desk or a phone.
//
// Every figure names its source, and the page never mixes them:
//
//   - the cluster map is the one the gateway holds (epoch, nodes by zone,
//     state and weight), and each node's disk use, object count and epoch
//     are its own answer to a health call (storagenode/client Health), made
//     to every node at once under a short deadline, so a dead or stopped
//     node costs the page one deadline, not one per node;
//   - node health and request rates are as seen by this gateway: its
//     health tracker (heartbeats, breakers) and a ring buffer of samples
//     of its request counters (Config.Requests, a plain func() Sample, so
//     any counters will do; Counter is a minimal middleware that provides
//     them), drawn as small inline SVG charts of rate, 5xx errors and p99;
//   - redundancy levels, scrub coverage, repairs and rebalance moves come
//     from a scrubber daemon's GET /status (Config.Scrubber), and show as
//     unknown without one;
//   - the durability estimate combines the scrubber's redundancy levels, a
//     configured drive failure rate and the repair window the scrubber
//     achieves, as Backblaze's published calculation does (durability.go,
//     docs/durability.md).
//
// The page refreshes a fragment (/console/panel) every two seconds by
// script, or the whole page by meta refresh without scripts. Answers are
// cached for a second, so that several open pages share one round of node
// calls.
//
// The console is read-only, but it shows addresses and load: a gateway
// serving it beyond loopback asks for an S3 access key and its secret as
// HTTP basic auth (Config.Credentials), compared in constant time. Basic
// auth sends the secret in the clear on every request: put TLS in front
// of a console served beyond loopback.
package console
