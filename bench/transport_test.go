package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkSmallCallTransport measures what a small node call costs in
// transport alone, the shape of a 4 KiB PUT's stage and commit calls (a
// 1 KiB body, a 200-byte answer), over HTTP/1.1 keep-alive connections
// and over unencrypted HTTP/2 (h2c, one multiplexed connection), at 16
// calls in flight. cpu-us/op is client and server together.
func BenchmarkSmallCallTransport(b *testing.B) {
	body := bytes.Repeat([]byte("k"), 1<<10)
	answer := bytes.Repeat([]byte("a"), 200)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	for _, proto := range []string{"http1", "h2c"} {
		b.Run(proto, func(b *testing.B) {
			srv := httptest.NewUnstartedServer(h)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			if proto == "h2c" {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				srv.Config.Protocols = &p
				tr.Protocols = &p
			}
			srv.Start()
			defer srv.Close()
			cl := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			parallel(b, processCPU, 16, func(_, _ int) error {
				resp, err := cl.Post(srv.URL+"/v1/stage", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (proto == "h2c") != (resp.ProtoMajor == 2) {
					return fmt.Errorf("status %d over %s", resp.StatusCode, resp.Proto)
				}
				return err
			})
		})
	}
}
