package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// useTLS makes s serve HTTPS with the certificate and key in the given PEM
// files; both empty leaves it on plain HTTP. Only one of them is a usage
// error.
func (s *server) useTLS(certFile, keyFile string) error {
	switch {
	case certFile == "" && keyFile == "":
		return nil
	case certFile == "" || keyFile == "":
		return usageErr("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return usageErr("--tls-cert/--tls-key: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.ln = tls.NewListener(s.ln, cfg)
	s.scheme = "https"
	return nil
}

// nodeClientOptions returns the options of the clients that talk to the
// storage nodes: signed with the cluster secret and, when caFile is set,
// trusting the CA certificates in it for nodes whose map address is
// https://... (the system roots otherwise).
func nodeClientOptions(secret []byte, caFile string) (*client.Options, error) {
	opts := &client.Options{Secret: secret}
	if caFile == "" {
		return opts, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, usageErr("--ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usageErr("--ca-file %s: no PEM certificate in it", caFile)
	}
	opts.HTTPClient = client.NewHTTPClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	return opts, nil
}
