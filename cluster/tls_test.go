package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kintsugi-store/kintsugi/placement"
)

// selfSigned returns a server config with a certificate for 127.0.0.1 and
// a client config trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kintsugi test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestGroupOverTLS: members replicate over TLS; a dialer that does not
// trust the certificate gets nowhere, secret or not.
func TestGroupOverTLS(t *testing.T) {
	srv, cli := selfSigned(t)
	var groups []*Group
	for _, id := range []string{"a", "b", "c"} {
		cfg := testConfig(id, t.TempDir(), "127.0.0.1:0", testSecret)
		cfg.ServerTLS, cfg.ClientTLS = srv, cli
		g, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		groups = append(groups, g)
	}
	var servers []raft.Server
	for _, g := range groups {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(g.ID()), Address: raft.ServerAddress(g.Addr())})
	}
	if err := groups[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var leader *Group
	for leader == nil {
		for _, g := range groups {
			if g.Status().State == "Leader" {
				leader = g
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader over TLS")
		case <-time.After(20 * time.Millisecond):
		}
	}
	m, err := leader.propose(ctx, entry{Init: testMap(1, "a", "b", "c")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Apply(ctx, placement.DrainNode("zz")); !errors.Is(err, placement.ErrInvalidChange) {
		t.Fatalf("drain of an unknown node: %v", err)
	}
	for _, g := range groups {
		for g.Map() == nil || g.Map().Epoch != m.Epoch {
			select {
			case <-ctx.Done():
				t.Fatalf("member %s did not get the map over TLS", g.ID())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Trusting nothing, the secret is not enough.
	plain := newStreamLayer(mustListen(t), nil, testSecret, nil, &tls.Config{MinVersion: tls.VersionTLS12}, groups[0].log)
	defer plain.Close()
	if _, err := plain.Dial(raft.ServerAddress(leader.Addr()), time.Second); err == nil {
		t.Fatal("a dialer that does not trust the certificate connected")
	}
}
