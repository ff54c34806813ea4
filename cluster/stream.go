package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The Raft transport's handshake. Before any Raft byte, each side proves
// it holds the cluster secret without sending it:
//
//	listener -> dialer: magic, nonce L (32 bytes)
//	dialer -> listener: nonce D (32 bytes), HMAC(secret, "dial"   | L | D)
//	listener -> dialer:                     HMAC(secret, "listen" | L | D)
//
// Fresh nonces on both sides make a recorded handshake useless to replay,
// and the listener's proof keeps a node from talking Raft to an impostor
// listening on a voter's address. The secret authenticates peers; TLS,
// when configured, keeps the map from being read on the wire. A peer
// without the secret is dropped before Raft sees it, so it can neither
// vote, ask for votes, nor append entries.
const (
	handshakeMagic   = "KINTSUGI-RAFT-1\n"
	nonceSize        = 32
	handshakeTimeout = 5 * time.Second
)

// ErrHandshake is wrapped by a failed Raft transport handshake.
var ErrHandshake = errors.New("raft handshake failed")

func proof(secret []byte, role string, l, d []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(role))
	h.Write(l)
	h.Write(d)
	return h.Sum(nil)
}

// listenSide runs the listener's half of the handshake on c.
func listenSide(c net.Conn, secret []byte) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	l := make([]byte, nonceSize)
	rand.Read(l)
	if _, err := c.Write(append([]byte(handshakeMagic), l...)); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	msg := make([]byte, nonceSize+sha256.Size)
	if _, err := io.ReadFull(c, msg); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	d, mac := msg[:nonceSize], msg[nonceSize:]
	if !hmac.Equal(mac, proof(secret, "dial", l, d)) {
		return fmt.Errorf("%w: the peer does not hold the cluster secret", ErrHandshake)
	}
	if _, err := c.Write(proof(secret, "listen", l, d)); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return nil
}

// dialSide runs the dialer's half of the handshake on c.
func dialSide(c net.Conn, secret []byte) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	hello := make([]byte, len(handshakeMagic)+nonceSize)
	if _, err := io.ReadFull(c, hello); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if string(hello[:len(handshakeMagic)]) != handshakeMagic {
		return fmt.Errorf("%w: not a Kintsugi Raft listener", ErrHandshake)
	}
	l := hello[len(handshakeMagic):]
	d := make([]byte, nonceSize)
	rand.Read(d)
	if _, err := c.Write(append(d, proof(secret, "dial", l, d)...)); err != nil {
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, mac); err != nil {
		return fmt.Errorf("%w: the listener refused us (wrong cluster secret?): %w", ErrHandshake, err)
	}
	if !hmac.Equal(mac, proof(secret, "listen", l, d)) {
		return fmt.Errorf("%w: the listener does not hold the cluster secret", ErrHandshake)
	}
	return nil
}

// streamLayer is a raft.StreamLayer over TCP (TLS if configured) whose
// connections have passed the handshake in both directions.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	secret    []byte
	serverTLS *tls.Config // nil: plain TCP
	clientTLS *tls.Config
	log       *slog.Logger

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(ln net.Listener, advertise net.Addr, secret []byte, serverTLS, clientTLS *tls.Config, log *slog.Logger) *streamLayer {
	s := &streamLayer{
		ln: ln, advertise: advertise, secret: secret, serverTLS: serverTLS, clientTLS: clientTLS, log: log,
		conns: make(chan net.Conn), done: make(chan struct{}),
	}
	go s.acceptLoop()
	return s
}

// acceptLoop hands each connection to its own handshake, so that a slow
// or hostile peer cannot hold up the others.
func (s *streamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("raft listener failed", "err", err)
			return
		}
		go s.admit(c)
	}
}

func (s *streamLayer) admit(c net.Conn) {
	if s.serverTLS != nil {
		c = tls.Server(c, s.serverTLS)
	}
	if err := listenSide(c, s.secret); err != nil {
		s.log.Warn("rejected raft connection", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	}
}

// Accept returns the next authenticated connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
	})
	return err
}

// Addr is the address peers dial: the advertised one if set.
func (s *streamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// Dial connects to a peer and runs the handshake within timeout.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(addr))
	if err != nil {
		return nil, err
	}
	if s.clientTLS != nil {
		cfg := s.clientTLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(string(addr))
		}
		c = tls.Client(c, cfg)
	}
	if err := dialSide(c, s.secret); err != nil {
		c.Close()
		return nil, fmt.Errorf("raft peer %s: %w", addr, err)
	}
	return c, nil
}
