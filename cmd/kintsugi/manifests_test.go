package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kintsugi-store/kintsugi/placement"
)

// The deployment files checked against the binary, from this package's
// directory.
const (
	composeFile    = "../../deploy/compose.yaml"
	composeMapFile = "../../deploy/cluster.yaml"
	kubernetesDir  = "../../deploy/kubernetes"
)

// TestManifestsMatchFlags reads every manifest, the compose file and the
// systemd units and checks each kintsugi command line in them against the
// real subcommands' flag sets, and the ports, volumes and cluster maps
// around them (for units: writable paths, credentials and hardening)
// against those command lines.
func TestManifestsMatchFlags(t *testing.T) {
	var problems []string
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	mapYAML, err := os.ReadFile(composeMapFile)
	if err != nil {
		t.Fatal(err)
	}
	problems = append(problems, checkCompose("compose.yaml", b, mapYAML)...)

	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubernetesDir, err)
	}
	var docs []manifestDoc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseManifests(filepath.Base(f), b)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d...)
	}
	ps, seen := checkKubernetes(docs)
	problems = append(problems, ps...)
	for _, kind := range []string{"StatefulSet", "Deployment", "CronJob", "ConfigMap", "Secret", "Service"} {
		if !seen[kind] {
			problems = append(problems, "deploy/kubernetes: no "+kind)
		}
	}
	problems = append(problems, checkSystemd(t)...)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestManifestChecksFail shows that each check can fail: a compose file or
// manifest with one mistake must be caught.
func TestManifestChecksFail(t *testing.T) {
	const goodMap = "data_shards: 1\nparity_shards: 0\nnodes:\n  - {id: n1, addr: \"node1:9101\", zone: z1}\n"
	const goodNode = `
services:
  node1:
    command: [storagenode, --id, n1, --listen, "0.0.0.0:9101", --data, /data]
    expose: ["9101"]
    volumes: ["n1:/data"]
    healthcheck: {test: [CMD, /kintsugi, probe, --url, "http://127.0.0.1:9101/readyz"]}
`
	const goodSet = `
kind: StatefulSet
metadata: {name: kn}
spec:
  serviceName: kn
  replicas: 1
  template:
    spec:
      containers:
        - name: storagenode
          image: kintsugi:latest
          args: [storagenode, --id, $(POD_NAME), --listen, "0.0.0.0:9101", --data, /data]
          ports: [{name: node, containerPort: 9101}]
          readinessProbe: {httpGet: {path: /readyz, port: node}}
          volumeMounts: [{name: data, mountPath: /data}]
---
kind: ConfigMap
metadata: {name: c}
data:
  cluster.yaml: |
    data_shards: 1
    parity_shards: 0
    nodes:
      - {id: kn-0, addr: "kn-0.kn:9101", zone: z1}
`
	if ps := checkCompose("good", []byte(goodNode), []byte(goodMap)); len(ps) > 0 {
		t.Fatalf("the good compose file has problems: %q", ps)
	}
	docs, err := parseManifests("good", []byte(goodSet))
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := checkKubernetes(docs); len(ps) > 0 {
		t.Fatalf("the good manifest has problems: %q", ps)
	}
	tests := []struct {
		name, old, new string
		want           string // in one of the problems
	}{
		{"unknown flag", "--listen,", "--lissten,", `unknown flag --lissten`},
		{"unknown subcommand", "[storagenode,", "[storage-node,", `unknown subcommand "storage-node"`},
		{"probe flag", "probe, --url", "probe, --uri", `unknown flag --uri`},
		{"flag without value", `--data, /data]`, `--data]`, `--data needs a value`},
		{"positional argument", `--data, /data]`, `--data, /data, extra]`, `unexpected argument "extra"`},
		{"required flag", `--id, n1, `, ``, `storagenode without --id`},
		{"port not exposed", `"0.0.0.0:9101"`, `"0.0.0.0:9102"`, `listens on 9102, which is not among its ports`},
		{"probe port", `127.0.0.1:9101/readyz`, `127.0.0.1:9999/readyz`, `probes port "9999"`},
		{"data not a volume", `--data, /data]`, `--data, /srv]`, `--data /srv is not a volume`},
		{"map id", `[storagenode, --id, n1,`, `[storagenode, --id, n7,`, `map node n1`},
	}
	for _, tc := range tests {
		t.Run("compose/"+tc.name, func(t *testing.T) {
			bad := strings.Replace(goodNode, tc.old, tc.new, 1)
			if bad == goodNode {
				t.Fatalf("%q is not in the compose file", tc.old)
			}
			ps := checkCompose("bad", []byte(bad), []byte(goodMap))
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("want a problem with %q, got %q", tc.want, ps)
			}
		})
	}
	k8s := []struct {
		name, old, new string
		want           string
	}{
		{"unknown flag", "--data,", "--dir,", `unknown flag --dir`},
		{"container port", "containerPort: 9101", "containerPort: 9100", `listens on 9101, which is not among its ports`},
		{"named probe port", "port: node}", "port: nod}", `probes port "nod"`},
		{"mount", "mountPath: /data}", "mountPath: /var/data}", `--data /data is not a volume`},
		{"map address", `addr: "kn-0.kn:9101"`, `addr: "kn-0.other:9101"`, `map node kn-0 has addr "kn-0.other:9101"`},
		{"replicas", "replicas: 1", "replicas: 0", `map node kn-0`},
	}
	for _, tc := range k8s {
		t.Run("kubernetes/"+tc.name, func(t *testing.T) {
			bad := strings.Replace(goodSet, tc.old, tc.new, 1)
			if bad == goodSet {
				t.Fatalf("%q is not in the manifest", tc.old)
			}
			docs, err := parseManifests("bad", []byte(bad))
			if err != nil {
				t.Fatal(err)
			}
			ps, _ := checkKubernetes(docs)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("want a problem with %q, got %q", tc.want, ps)
			}
		})
	}
}

// deployed is one kintsugi container of a compose file or manifest.
type deployed struct {
	where      string     // for messages: "compose.yaml service node1"
	args       []string   // after the entrypoint: subcommand, flags
	probes     [][]string // health-check commands that run the binary
	ports      []string   // container ports it declares (numbers or k8s names)
	portNames  map[string]int
	probePorts []string // ports HTTP probes and `kintsugi probe` reach
	mounts     []string // container paths of volumes
}

// flagTable caches each subcommand's flags: name -> takes a value.
var flagTable = struct {
	sync.Mutex
	m map[string]map[string]bool
}{m: map[string]map[string]bool{}}

// helpFlag matches a flag line of flag.PrintDefaults: "  -name type" or
// "  -name" (a bool, which takes no value), or "  -x\tusage".
var helpFlag = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\s+(\S+))?`)

// subcommandFlags runs `kintsugi NAME -h` in this process and returns the
// flags it lists, each with whether it takes a value; nil for an unknown
// subcommand.
func subcommandFlags(name string) map[string]bool {
	flagTable.Lock()
	defer flagTable.Unlock()
	if f, ok := flagTable.m[name]; ok {
		return f
	}
	if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == name }) {
		return nil
	}
	env, out := testEnv()
	run(context.Background(), env, []string{name, "-h"})
	f := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			f[m[1]] = m[2] != ""
		}
	}
	flagTable.m[name] = f
	return f
}

// requiredFlags are what a containerised subcommand must be given: the
// ones it refuses to run without, and --state, whose default lies under
// $HOME, which a scratch image does not have.
var requiredFlags = map[string][]string{
	"storagenode": {"id", "data", "listen"},
	"gateway":     {"cluster", "listen"},
	"scrub":       {"cluster", "state"},
	"scrubber":    {"cluster", "state", "listen"},
	"probe":       {"url"},
}

// parseArgs checks one kintsugi command line against the subcommand's
// flags and returns the flags' values.
func parseArgs(where string, args []string) (map[string]string, []string) {
	if len(args) == 0 {
		return nil, []string{where + ": no subcommand"}
	}
	flags := subcommandFlags(args[0])
	if flags == nil {
		return nil, []string{fmt.Sprintf("%s: unknown subcommand %q", where, args[0])}
	}
	var problems []string
	vals := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			problems = append(problems, fmt.Sprintf("%s: kintsugi %s: unexpected argument %q", where, args[0], a))
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := flags[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: kintsugi %s: unknown flag --%s", where, args[0], name))
			continue
		case takesValue && !hasVal:
			if i+1 >= len(args) {
				problems = append(problems, fmt.Sprintf("%s: kintsugi %s: --%s needs a value", where, args[0], name))
				continue
			}
			i++
			val = args[i]
		}
		vals[name] = val
	}
	for _, r := range requiredFlags[args[0]] {
		if _, ok := vals[r]; !ok {
			problems = append(problems, fmt.Sprintf("%s: kintsugi %s without --%s", where, args[0], r))
		}
	}
	return vals, problems
}

// check checks a container's command lines, ports and volumes, and
// returns its flag values.
func (d *deployed) check() (map[string]string, []string) {
	vals, problems := parseArgs(d.where, d.args)
	for _, p := range d.probes {
		pv, ps := parseArgs(d.where+" health check", p)
		problems = append(problems, ps...)
		if u, err := url.Parse(pv["url"]); err == nil && u.Port() != "" {
			d.probePorts = append(d.probePorts, u.Port())
		}
	}
	if vals == nil {
		return nil, problems
	}
	port := func(p string) string { // a declared or probed port as a number
		if n, ok := d.portNames[p]; ok {
			return strconv.Itoa(n)
		}
		return p
	}
	var listens []string
	for name, v := range vals {
		if name != "listen" && !strings.HasSuffix(name, "-listen") {
			continue
		}
		_, p, err := net.SplitHostPort(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: --%s %q: %v", d.where, name, v, err))
			continue
		}
		listens = append(listens, p)
		if !slices.ContainsFunc(d.ports, func(q string) bool { return port(q) == p }) {
			problems = append(problems, fmt.Sprintf("%s: --%s listens on %s, which is not among its ports %q", d.where, name, p, d.ports))
		}
	}
	for _, q := range d.ports {
		if !slices.Contains(listens, port(q)) {
			problems = append(problems, fmt.Sprintf("%s: declares port %s, on which no --listen flag serves", d.where, q))
		}
	}
	for _, q := range d.probePorts {
		if !slices.Contains(listens, port(q)) {
			problems = append(problems, fmt.Sprintf("%s: probes port %q, on which no --listen flag serves", d.where, q))
		}
	}
	for _, name := range []string{"data", "state"} {
		if v, ok := vals[name]; ok && !slices.Contains(d.mounts, path.Clean(v)) {
			problems = append(problems, fmt.Sprintf("%s: --%s %s is not a volume (mounts %q)", d.where, name, v, d.mounts))
		}
	}
	for _, name := range []string{"cluster", "secret-file", "credentials", "ca-file", "tls-cert", "tls-key"} {
		v, ok := vals[name]
		if ok && !slices.Contains(d.mounts, path.Clean(v)) && !slices.Contains(d.mounts, path.Dir(v)) {
			problems = append(problems, fmt.Sprintf("%s: --%s %s is in no volume (mounts %q)", d.where, name, v, d.mounts))
		}
	}
	return vals, problems
}

// storageInstance is a storage node as a map must name it.
type storageInstance struct{ id, addr, where string }

// checkMap checks that the map parses and names exactly the storage nodes
// deployed, at the addresses they serve on.
func checkMap(where string, mapYAML []byte, nodes []storageInstance) []string {
	m, err := placement.Parse(mapYAML)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", where, err)}
	}
	var problems []string
	for _, n := range m.Nodes {
		i := slices.IndexFunc(nodes, func(s storageInstance) bool { return s.id == n.ID })
		switch {
		case i < 0:
			problems = append(problems, fmt.Sprintf("%s: map node %s runs nowhere (storage nodes: %v)", where, n.ID, nodes))
		case nodes[i].addr != n.Addr:
			problems = append(problems, fmt.Sprintf("%s: map node %s has addr %q, but %s serves at %q", where, n.ID, n.Addr, nodes[i].where, nodes[i].addr))
		}
	}
	for _, s := range nodes {
		if _, ok := m.Node(s.id); !ok {
			problems = append(problems, fmt.Sprintf("%s: %s runs node %s, which is not in the map", where, s.where, s.id))
		}
	}
	return problems
}

// checkCompose checks a compose file and the cluster map its services use.
func checkCompose(name string, b, mapYAML []byte) []string {
	var f struct {
		Services map[string]struct {
			Command     []string `yaml:"command"`
			Ports       []string `yaml:"ports"`
			Expose      []string `yaml:"expose"`
			Volumes     []string `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	var problems []string
	var nodes []storageInstance
	for svc, s := range f.Services {
		d := &deployed{where: name + " service " + svc, args: s.Command}
		for _, p := range s.Ports {
			p, _, _ = strings.Cut(p, "/")
			d.ports = append(d.ports, p[strings.LastIndex(p, ":")+1:])
		}
		d.ports = append(d.ports, s.Expose...)
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				problems = append(problems, fmt.Sprintf("%s: volume %q names no container path", d.where, v))
				continue
			}
			d.mounts = append(d.mounts, path.Clean(parts[1]))
		}
		if t := s.Healthcheck.Test; len(t) > 2 && t[0] == "CMD" && t[1] == "/kintsugi" {
			d.probes = append(d.probes, t[2:])
		} else if len(t) > 0 {
			problems = append(problems, fmt.Sprintf("%s: health check %q does not run /kintsugi (the image has no shell)", d.where, t))
		}
		vals, ps := d.check()
		problems = append(problems, ps...)
		if len(s.Command) > 0 && s.Command[0] == "storagenode" && vals != nil {
			_, port, _ := net.SplitHostPort(vals["listen"])
			nodes = append(nodes, storageInstance{vals["id"], net.JoinHostPort(svc, port), d.where})
		}
	}
	if len(f.Services) == 0 {
		problems = append(problems, name+": no services")
	}
	return append(problems, checkMap(name+" cluster map", mapYAML, nodes)...)
}

// manifestDoc is one Kubernetes object.
type manifestDoc struct {
	file string
	obj  k8sObject
}

// k8sObject holds the parts of a Kubernetes object the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		ServiceName string  `yaml:"serviceName"`
		Replicas    *int    `yaml:"replicas"`
		Template    podTmpl `yaml:"template"`
		JobTemplate struct {
			Spec struct {
				Template podTmpl `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type podTmpl struct {
	Spec struct {
		Containers     []k8sContainer `yaml:"containers"`
		InitContainers []k8sContainer `yaml:"initContainers"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Port yaml.Node `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

func parseManifests(file string, b []byte) ([]manifestDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []manifestDoc
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, manifestDoc{file, o})
	}
}

// checkKubernetes checks every kintsugi container of the manifests and the
// cluster maps in their ConfigMaps against the StatefulSets' pods. It also
// returns the kinds it saw.
func checkKubernetes(docs []manifestDoc) ([]string, map[string]bool) {
	var problems []string
	seen := map[string]bool{}
	var nodes []storageInstance
	for _, doc := range docs {
		o := doc.obj
		seen[o.Kind] = true
		var pod podTmpl
		switch o.Kind {
		case "StatefulSet", "Deployment", "DaemonSet", "Job":
			pod = o.Spec.Template
		case "CronJob":
			pod = o.Spec.JobTemplate.Spec.Template
		default:
			continue
		}
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			if !strings.Contains(c.Image, "kintsugi") {
				continue
			}
			where := fmt.Sprintf("%s: %s %s container %s", doc.file, o.Kind, o.Metadata.Name, c.Name)
			cmd := c.Command
			if len(cmd) > 0 && cmd[0] == "/kintsugi" {
				cmd = cmd[1:]
			} else if len(cmd) > 0 {
				problems = append(problems, fmt.Sprintf("%s: command %q does not run /kintsugi", where, cmd))
				continue
			}
			d := &deployed{where: where, args: append(slices.Clone(cmd), c.Args...), portNames: map[string]int{}}
			for _, p := range c.Ports {
				d.ports = append(d.ports, strconv.Itoa(p.ContainerPort))
				if p.Name != "" {
					d.portNames[p.Name] = p.ContainerPort
				}
			}
			for _, m := range c.VolumeMounts {
				d.mounts = append(d.mounts, path.Clean(m.MountPath))
			}
			for _, p := range []*k8sProbe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
				switch {
				case p == nil:
				case p.HTTPGet != nil:
					d.probePorts = append(d.probePorts, p.HTTPGet.Port.Value)
				case p.Exec != nil && len(p.Exec.Command) > 1 && p.Exec.Command[0] == "/kintsugi":
					d.probes = append(d.probes, p.Exec.Command[1:])
				case p.Exec != nil:
					problems = append(problems, fmt.Sprintf("%s: exec probe %q does not run /kintsugi (the image has no shell)", where, p.Exec.Command))
				}
			}
			vals, ps := d.check()
			problems = append(problems, ps...)
			if o.Kind == "StatefulSet" && len(d.args) > 0 && d.args[0] == "storagenode" && vals != nil {
				_, port, _ := net.SplitHostPort(vals["listen"])
				replicas := 1
				if o.Spec.Replicas != nil {
					replicas = *o.Spec.Replicas
				}
				for i := range replicas {
					pod := fmt.Sprintf("%s-%d", o.Metadata.Name, i)
					nodes = append(nodes, storageInstance{
						id:    strings.ReplaceAll(vals["id"], "$(POD_NAME)", pod),
						addr:  net.JoinHostPort(pod+"."+o.Spec.ServiceName, port),
						where: fmt.Sprintf("%s: pod %s", doc.file, pod),
					})
				}
			}
		}
	}
	for _, doc := range docs {
		if doc.obj.Kind != "ConfigMap" {
			continue
		}
		for key, v := range doc.obj.Data {
			if strings.HasSuffix(key, ".yaml") {
				problems = append(problems, checkMap(fmt.Sprintf("%s: ConfigMap %s %s", doc.file, doc.obj.Metadata.Name, key), []byte(v), nodes)...)
			}
		}
	}
	return problems, seen
}
