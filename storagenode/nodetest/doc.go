// Package nodetest holds what tests need to stand in for a storage node:
// Node, an in-memory node with the method set of *client.Client and fault
// knobs, and RunConformance, the suite of the node contract that the real
// node (over HTTP) and Node both pass.
//
// The real node is the reference: when the suite finds the two disagree,
// Node is what changes, so that tests written against Node keep meaning
// what they say about the node. Node is test-only: it keeps everything in
// memory, fsyncs nothing and must never back a running cluster.
//
// The package must not import the node server (storagenode), the gateway
// or the scrubber: any of their tests may import it.
package nodetest
