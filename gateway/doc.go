// Package gateway is Kintsugi's S3 front door: it owns the S3 wire protocol
// (path-style and virtual-hosted routing, the SigV4 authentication hook,
// request parsing and limits, slow-client deadlines, XML bodies and S3
// error codes) and turns each call into operations on a Backend, normally
// the object protocol of gateway/objects. Server-side copies stream the
// source object into the destination through the Backend, never through
// the client.
//
// The gateway is stateless; any number may serve the same cluster. It must
// never touch node files or import badger, and it never buffers a whole
// object body: uploads stream from the connection into the Backend and
// downloads stream from the Backend into the connection.
//
// CORS preflights (OPTIONS) are answered without authentication, as S3
// does, from the bucket's CORS configuration; requests that carry an
// Origin get the Access-Control-* headers of the first matching rule, on
// errors too. Bucket configuration (CORS, tagging) is read through the
// Backend's bucket cache, so a change may take its TTL to reach every
// gateway.
//
// Object keys are taken from the decoded URL path exactly as the client sent
// them ("a//b", "..", "%", "+" and spaces included); they are names, never
// file paths.
//
// With Config.Registerer set, every request is counted by S3 operation and
// status class, timed, and its body bytes counted (kintsugi_s3_*). The
// operation label is derived from the request on its own (see operation),
// so that its values stay a short fixed list.
package gateway
