// Package sigv4 owns S3 request authentication and payload decoding: it
// checks an S3 request's AWS Signature Version 4 (Authorization header or
// presigned query string) against a set of credentials and hands back a
// reader that yields the object payload, verifying it as it streams.
//
// Supported forms:
//
//   - Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
//     Signature=..., dated by X-Amz-Date or Date, within Verifier.MaxSkew.
//   - Presigned URLs (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//     X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature), unsigned payload.
//   - x-amz-content-sha256 payload modes: a hex SHA-256 digest (checked when
//     the body is read), UNSIGNED-PAYLOAD, and the aws-chunked encodings
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD (every chunk signature checked, each
//     chained from the one before, starting at the request signature),
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (the same plus a signed
//     trailer) and STREAMING-UNSIGNED-PAYLOAD-TRAILER (no chunk signatures).
//   - Checksums of the decoded payload: Content-MD5, x-amz-checksum-crc32,
//     -crc32c, -crc64nvme, -sha1, -sha256, -sha512 and -md5, as request
//     headers or as trailers declared in x-amz-trailer. Other checksum
//     headers (xxhash) are not checked; declaring one as a trailer is
//     refused as an unsupported checksum.
//
// Canonical requests follow S3's rules, not the generic SigV4 ones: the path
// is URI-encoded once (never twice) and is not normalised.
//
// Checks that need the payload are deferred: reading Result.Body to its end
// performs them, and a failed check is returned from Read as an *Error in
// place of io.EOF. Bytes already returned before such an error are not
// trustworthy; the caller must abandon whatever it was writing. Memory per
// request is bounded (a small read buffer and one hash state per check)
// whatever the payload or chunk size.
//
// The package uses only the standard library. It must never import gin or
// touch storage, and must never log or return secrets, derived keys or
// expected signatures.
package sigv4
