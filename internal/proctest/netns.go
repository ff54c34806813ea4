package proctest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Net is a set of Linux network namespaces joined by one bridge: each
// Host is a namespace with its own address, so that cluster processes run
// as on separate machines, and a partition is a link taken down. The
// bridge lives in a namespace of its own too, so a Net touches nothing of
// the machine's own network: every address it hands out (198.18.0.0/15,
// the range set aside for benchmarking networks) exists only inside the
// namespaces it made, and Close deletes them all.
type Net struct {
	t      testing.TB
	prefix string // unique per Net: names of its namespaces and links
	bridge string // the bridge's namespace

	mu    sync.Mutex
	hosts []*Host
}

// Host is one namespace of a Net.
type Host struct {
	Name string
	NS   string // namespace name, for ip netns exec
	IP   string // its address on the bridge
	link string // the bridge-side end of its veth, in the bridge namespace
	net  *Net
}

// NewNet makes a Net, or skips t with a loud message when namespaces
// cannot be made here (not root, no ip command). Under CI=true it fails
// instead: CI must run these tests.
func NewNet(t testing.TB) *Net {
	t.Helper()
	netsMu.Lock()
	netsMade++
	// Namespace and link names must be short (links: 15 bytes) and
	// unique among concurrent test processes.
	prefix := fmt.Sprintf("kt%dx%d", os.Getpid()%100000, netsMade)
	netsMu.Unlock()
	n := &Net{t: t, prefix: prefix, bridge: prefix + "br"}
	err := n.ip("netns", "add", n.bridge)
	if err == nil {
		t.Cleanup(n.Close)
		err = n.ip("-n", n.bridge, "link", "add", "br0", "type", "bridge")
	}
	if err == nil {
		err = n.ip("-n", n.bridge, "link", "set", "br0", "up")
	}
	if err != nil {
		msg := fmt.Sprintf("NETWORK NAMESPACES UNAVAILABLE, TEST NOT RUN: %v (needs root and iproute2)", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return n
}

var (
	netsMu   sync.Mutex
	netsMade int
)

func (n *Net) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Host makes a namespace named name with the next address of the Net.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	i := len(n.hosts) + 1
	h := &Host{Name: name, NS: fmt.Sprintf("%sh%d", n.prefix, i), IP: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1),
		link: fmt.Sprintf("v%d", i), net: n}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", n.bridge, "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"-n", n.bridge, "link", "set", h.link, "master", "br0", "up"},
		{"-n", h.NS, "addr", "add", h.IP + "/15", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := n.ip(s...); err != nil {
			n.t.Fatalf("host %s: %v", name, err)
		}
	}
	return h
}

// Addr returns the host's address with port.
func (h *Host) Addr(port int) string { return fmt.Sprintf("%s:%d", h.IP, port) }

// Start runs bin with args inside the host's namespace, as Start does.
func (h *Host) Start(ctx context.Context, name, bin, logPath string, env []string, args ...string) (*Proc, error) {
	return Start(ctx, name, "ip", logPath, env, append([]string{"netns", "exec", h.NS, bin}, args...)...)
}

// Command returns a command running bin with args inside the namespace.
func (h *Host) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, bin}, args...)...)
}

// Cut takes the host's link to the bridge down: it can reach no other
// host, and none can reach it, until Heal.
func (h *Host) Cut() error { return h.net.ip("-n", h.net.bridge, "link", "set", h.link, "down") }

// Heal brings the host's link up again.
func (h *Host) Heal() error { return h.net.ip("-n", h.net.bridge, "link", "set", h.link, "up") }

// Block drops every packet between the host and the addresses ips (an
// nft table in the host's namespace), leaving its other links alone: a
// partition of some pairs of hosts. A later Block replaces the set;
// Unblock lifts it.
func (h *Host) Block(ips ...string) error {
	h.Unblock()
	if len(ips) == 0 {
		return nil
	}
	set := strings.Join(ips, ", ")
	rules := fmt.Sprintf(`table inet kblock {
	chain out { type filter hook output priority 0; ip daddr { %s } drop; }
	chain in { type filter hook input priority 0; ip saddr { %s } drop; }
}
`, set, set)
	cmd := exec.Command("ip", "netns", "exec", h.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("host %s: nft: %v: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Unblock lifts Block.
func (h *Host) Unblock() error {
	out, err := exec.Command("ip", "netns", "exec", h.NS, "nft", "delete", "table", "inet", "kblock").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("host %s: nft: %v: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DialContext connects from inside the host's namespace, so that the
// test process itself can act as a client on that host: the socket is
// made on an OS thread moved into the namespace, and a socket keeps its
// namespace for life. The thread is never moved back; it ends with the
// goroutine that stays locked to it.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread is in h.NS now
		f, err := os.Open("/run/netns/" + h.NS)
		if err != nil {
			res <- result{err: fmt.Errorf("host %s: %w", h.Name, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{err: fmt.Errorf("host %s: setns: %w", h.Name, err)}
			return
		}
		d := net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
		c, err := d.DialContext(ctx, network, addr)
		res <- result{c, err}
	}()
	r := <-res
	return r.c, r.err
}

// HTTPClient returns an HTTP client whose connections start on the host.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         h.DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// Close deletes every namespace of the Net; the links go with them.
// Processes still running inside must have been stopped first.
func (n *Net) Close() {
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	for _, h := range hosts {
		n.ip("netns", "del", h.NS)
	}
	n.ip("netns", "del", n.bridge)
}
