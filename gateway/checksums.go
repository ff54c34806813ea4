package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// checksumAlgorithms are the x-amz-checksum-<algorithm> values the gateway
// stores and returns; sigv4 verifies each of them, as a header or as a
// declared trailer, before the body's last byte is handed on.
var checksumAlgorithms = []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256", "sha512", "md5"}

// verifiedChecksums returns the func that collects an upload's checksums
// once its body has ended: header values, and trailer values the request
// declared in x-amz-trailer (only those are verified).
func verifiedChecksums(h http.Header, p *sigv4.Result) func() map[string]string {
	return func() map[string]string {
		var declared []string
		for _, v := range h.Values("X-Amz-Trailer") {
			for name := range strings.SplitSeq(v, ",") {
				declared = append(declared, strings.ToLower(strings.TrimSpace(name)))
			}
		}
		var out map[string]string
		for _, alg := range checksumAlgorithms {
			name := "x-amz-checksum-" + alg
			v := h.Get(name)
			if v == "" && slices.Contains(declared, name) {
				v = p.Trailers.Get(name)
			}
			if v == "" {
				continue
			}
			if out == nil {
				out = make(map[string]string)
			}
			out[alg] = v
		}
		return out
	}
}

// setChecksumHeaders answers the stored checksums of a whole object, as
// S3 does when x-amz-checksum-mode is ENABLED. A multipart object's are
// composite ("<base64>-<parts>"), which clients know not to check against
// the bytes.
func setChecksumHeaders(h http.Header, sums map[string]string) {
	typ := ""
	for alg, v := range sums {
		h.Set("x-amz-checksum-"+alg, v)
		if strings.Contains(v, "-") {
			typ = "COMPOSITE"
		} else if typ == "" {
			typ = "FULL_OBJECT"
		}
	}
	if typ != "" {
		h.Set("x-amz-checksum-type", typ)
	}
}

// echoChecksums copies the request's checksum headers and verified
// trailers to the response, as S3 does for uploads.
func echoChecksums(h http.Header, sums map[string]string) {
	for alg, v := range sums {
		h.Set("x-amz-checksum-"+alg, v)
	}
}
