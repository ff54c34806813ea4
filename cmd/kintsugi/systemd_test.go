package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// systemdDir holds the systemd units, from this package's directory.
const systemdDir = "../../deploy/systemd"

// unitBinary is where the units expect the binary.
const unitBinary = "/usr/local/bin/kintsugi"

// unitFile is a parsed systemd unit: its directives by section, every
// value of a directive in order (continuation lines joined).
type unitFile map[string]map[string][]string

func parseUnit(b []byte) unitFile {
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, _ := strings.Cut(line, "=")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// hardening are the [Service] settings every long-running unit must make:
// without them a compromised process could write anywhere, gain
// privileges or run out of file descriptors under load.
var hardening = map[string]string{
	"NoNewPrivileges":       "yes",
	"ProtectSystem":         "strict",
	"ProtectHome":           "yes",
	"PrivateTmp":            "yes",
	"CapabilityBoundingSet": "",
	"RestrictSUIDSGID":      "yes",
}

// checkSystemdUnit checks one service unit: its ExecStart against the
// binary's flags, that what it writes (--data, --state) is writable under
// ProtectSystem=strict, that it runs unprivileged and hardened, and that
// files it reads are outside the paths it hides.
func checkSystemdUnit(name string, b []byte) []string {
	var problems []string
	u := parseUnit(b)
	svc := u["Service"]
	if svc == nil {
		return []string{name + ": no [Service] section"}
	}
	execs := svc["ExecStart"]
	if len(execs) != 1 {
		return []string{fmt.Sprintf("%s: %d ExecStart lines, want 1", name, len(execs))}
	}
	args := strings.Fields(strings.TrimLeft(execs[0], "-@:+!"))
	if len(args) == 0 || args[0] != unitBinary {
		return []string{fmt.Sprintf("%s: ExecStart %q does not run %s", name, execs[0], unitBinary)}
	}
	vals, ps := parseArgs(name, args[1:])
	problems = append(problems, ps...)

	writable := slices.Clone(svc["ReadWritePaths"])
	for _, d := range svc["StateDirectory"] {
		writable = append(writable, "/var/lib/"+d)
	}
	for _, flag := range []string{"data", "state"} {
		v, ok := vals[flag]
		if !ok {
			continue
		}
		if !slices.Contains(writable, path.Clean(v)) {
			problems = append(problems, fmt.Sprintf("%s: --%s %s is not writable (ReadWritePaths/StateDirectory %q)", name, flag, v, writable))
		}
	}
	for _, flag := range []string{"cluster", "secret-file", "credentials", "ca-file", "tls-cert", "tls-key"} {
		if v, ok := vals[flag]; ok && (strings.HasPrefix(v, "/home/") || strings.HasPrefix(v, "/root/") || strings.HasPrefix(v, "/tmp/")) {
			problems = append(problems, fmt.Sprintf("%s: --%s %s is hidden from the service by ProtectHome/PrivateTmp", name, flag, v))
		}
		if v := vals[flag]; strings.HasPrefix(v, "%d/") {
			cred := strings.TrimPrefix(v, "%d/")
			if !slices.ContainsFunc(svc["LoadCredential"], func(c string) bool { return strings.HasPrefix(c, cred+":") }) {
				problems = append(problems, fmt.Sprintf("%s: --%s %s names no LoadCredential", name, flag, v))
			}
		}
	}
	for k, want := range hardening {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != want {
			problems = append(problems, fmt.Sprintf("%s: %s=%q, want %q", name, k, got, want))
		}
	}
	if len(svc["DynamicUser"]) == 0 && len(svc["User"]) == 0 {
		problems = append(problems, name+": runs as root: set DynamicUser=yes or User=")
	}
	if len(svc["LimitNOFILE"]) == 0 {
		problems = append(problems, name+": no LimitNOFILE")
	}
	if svc["Type"] == nil || svc["Type"][0] != "oneshot" {
		// A server drains for up to 30s on SIGTERM.
		if t := svc["TimeoutStopSec"]; len(t) == 0 || t[0] != "40s" {
			problems = append(problems, fmt.Sprintf("%s: TimeoutStopSec=%q, want 40s (the drain takes up to 30s)", name, t))
		}
	}
	return problems
}

// checkSystemd checks every service unit of deploy/systemd and that each
// long-running role has one.
func checkSystemd(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(systemdDir, "*.service"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no units in %s: %v", systemdDir, err)
	}
	var problems []string
	roles := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		problems = append(problems, checkSystemdUnit("deploy/systemd/"+filepath.Base(f), b)...)
		if ex := parseUnit(b)["Service"]["ExecStart"]; len(ex) == 1 {
			if f := strings.Fields(ex[0]); len(f) > 1 {
				roles[f[1]] = true
			}
		}
	}
	for _, r := range []string{"storagenode", "gateway", "scrubber", "scrub"} {
		if !roles[r] {
			problems = append(problems, "deploy/systemd: no unit runs kintsugi "+r)
		}
	}
	if _, err := os.Stat(filepath.Join(systemdDir, "kintsugi-scrub.timer")); err != nil {
		problems = append(problems, "deploy/systemd: no timer for kintsugi-scrub.service")
	}
	return problems
}

// TestSystemdChecksFail shows that each check of a unit can fail.
func TestSystemdChecksFail(t *testing.T) {
	const good = `[Service]
DynamicUser=yes
StateDirectory=kintsugi-scrubber
LoadCredential=cluster-secret:/etc/kintsugi/cluster.secret
ExecStart=/usr/local/bin/kintsugi scrubber --cluster /etc/kintsugi/cluster.yaml \
  --state /var/lib/kintsugi-scrubber --listen 0.0.0.0:9300 --secret-file %d/cluster-secret
TimeoutStopSec=40s
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
CapabilityBoundingSet=
RestrictSUIDSGID=yes
`
	if ps := checkSystemdUnit("good", []byte(good)); len(ps) > 0 {
		t.Fatalf("the good unit has problems: %q", ps)
	}
	tests := []struct{ name, from, to, want string }{
		{"unknown flag", "--listen", "--listen-addr", "unknown flag --listen-addr"},
		{"missing required flag", "--listen 0.0.0.0:9300 ", "", "without --listen"},
		{"state not writable", "StateDirectory=kintsugi-scrubber", "StateDirectory=other", "is not writable"},
		{"credential not loaded", "LoadCredential=cluster-secret:", "LoadCredential=secret:", "names no LoadCredential"},
		{"root", "DynamicUser=yes", "", "runs as root"},
		{"writable system", "ProtectSystem=strict", "ProtectSystem=full", "ProtectSystem"},
		{"no fd limit", "LimitNOFILE=65536", "", "no LimitNOFILE"},
		{"short stop", "TimeoutStopSec=40s", "TimeoutStopSec=5s", "TimeoutStopSec"},
		{"other binary", "/usr/local/bin/kintsugi", "/opt/kintsugi", "does not run"},
		{"secret in home", "--cluster /etc/kintsugi/cluster.yaml", "--cluster /home/op/cluster.yaml", "hidden from the service"},
	}
	for _, tt := range tests {
		bad := strings.Replace(good, tt.from, tt.to, 1)
		if bad == good {
			t.Fatalf("%s: %q not in the good unit", tt.name, tt.from)
		}
		ps := checkSystemdUnit("bad", []byte(bad))
		if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, tt.want) }) {
			t.Errorf("%s: problems %q, want one containing %q", tt.name, ps, tt.want)
		}
	}
}

// TestSystemdVerify runs systemd-analyze verify over every unit of
// deploy/systemd, with the binary the tests built in place of
// /usr/local/bin/kintsugi (verify checks that ExecStart's binary exists)
// and the template instantiated. Any warning fails the test: verify
// exits 0 on unknown or misspelt settings, which systemd then ignores.
func TestSystemdVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "apt-get install systemd")
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(systemdDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasSuffix(base, ".service") && !strings.HasSuffix(base, ".timer") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base = strings.Replace(base, "@.", "@n1.", 1)
		out := filepath.Join(dir, base)
		if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), unitBinary, testBin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, out)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
