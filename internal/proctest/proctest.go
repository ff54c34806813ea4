// Package proctest starts real Kintsugi clusters for tests: every storage
// node and gateway is a separate OS process of the kintsugi binary, talking
// over loopback, so tests exercise the same code paths, flags and failure
// modes (kill -9, SIGSTOP, restarts) as production.
//
// A History records what clients did to such a cluster (PUT, GET and
// DELETE per key, with times and outcomes), and its Check decides with
// porcupine whether the cluster behaved as one linearizable register per
// key, taking a failed write as one that may take effect at any later
// time.
//
// It is test-only support: nothing outside _test.go files and test tools may
// import it.
package proctest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildBinary compiles the kintsugi command into dir and returns its path.
// The module root is found from the working directory.
func BuildBinary(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kintsugi")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kintsugi")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// handedOut remembers every port FreePort returned in this process. The
// kernel may give a just-closed port to the next listen on port 0, so two
// nodes of one cluster could otherwise be handed the same address.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: make(map[string]bool)}

// FreePort returns a loopback address with a port that was free a moment
// ago and that FreePort never returned before in this process. Processes
// get fixed ports so that a restarted node keeps its address and the
// cluster map stays valid.
func FreePort() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.ports[addr] {
			handedOut.ports[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("no fresh loopback port after 100 tries")
}

// Proc is one running kintsugi process.
type Proc struct {
	Name string
	Args []string
	Env  []string
	Addr string // from its ready line

	bin  string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args, waits for its "ready" line and returns the
// process. Output goes to logPath (appended), so restarts keep history.
func Start(ctx context.Context, name, bin, logPath string, env []string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, Args: args, Env: env, bin: bin}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p.log = f
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proc) start(ctx context.Context) error {
	cmd := exec.Command(p.bin, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stderr = p.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.Name, err)
	}
	fmt.Fprintf(p.log, "=== %s pid %d: %s\n", p.Name, cmd.Process.Pid, strings.Join(p.Args, " "))
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	readyc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.log, line)
			if strings.HasPrefix(line, "ready ") {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						select {
						case readyc <- a:
						default:
						}
					}
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	select {
	case a := <-readyc:
		p.Addr = a
		return nil
	case <-done:
		return fmt.Errorf("%s exited before ready: %v (log %s)", p.Name, p.err, p.log.Name())
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%s: not ready: %w (log %s)", p.Name, ctx.Err(), p.log.Name())
	}
}

// Restart starts the process again with the same arguments.
func (p *Proc) Restart(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("%s: still running", p.Name)
	}
	return p.start(ctx)
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid returns the OS process id.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	return cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	cmd.Process.Signal(syscall.SIGCONT) // a stopped process must be able to die
	cmd.Process.Kill()
	<-done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
// It returns the process's exit error (nil for exit status 0).
func (p *Proc) Stop(timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if !p.Running() {
		return p.exitErr()
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: did not exit within %v of SIGTERM", p.Name, timeout)
	}
	return p.exitErr()
}

func (p *Proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close kills the process if it runs and closes its log.
func (p *Proc) Close() {
	if p.Running() {
		p.Kill()
	}
	p.log.Close()
}

// LogGrep returns the last n lines of the process log that contain s,
// for failure messages about one key or request.
func (p *Proc) LogGrep(s string, n int) []string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	return out[max(len(out)-n, 0):]
}

// LogTail returns the last n bytes of the process log, for failure messages.
func (p *Proc) LogTail(n int64) string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
