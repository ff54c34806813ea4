package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
)

func scrubEnv(out, errb *bytes.Buffer, vars map[string]string) *environ {
	return &environ{
		stdout: out, stderr: errb,
		getenv: func(k string) string { return vars[k] },
		logger: slog.New(slog.NewTextHandler(errb, nil)),
	}
}

// deadMap writes a valid 4+2 map whose nodes refuse connections.
func deadMap(t *testing.T) string {
	t.Helper()
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2}
	for i := range 6 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		m.Nodes = append(m.Nodes, placement.Node{ID: fmt.Sprint("n", i+1), Addr: addr, Zone: fmt.Sprint("z", i+1)})
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScrubCommandUsage(t *testing.T) {
	cluster := deadMap(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"scrub"}, "--cluster is required"},
		{[]string{"scrub", "--cluster", "/nonexistent/cluster.yaml"}, "nonexistent"},
		{[]string{"scrub", "--cluster", cluster, "--report", "xml"}, "--report"},
		{[]string{"scrub", "--cluster", cluster, "--progress", "fancy"}, "--progress"},
		{[]string{"scrub", "--cluster", cluster, "--rate", "-1"}, "--rate"},
		{[]string{"scrub", "--cluster", cluster, "--concurrency", "0"}, "--concurrency"},
		{[]string{"scrub", "--cluster", cluster, "--staging-grace", "0s"}, "grace"},
		{[]string{"scrub", "--cluster", cluster, "extra"}, "unexpected argument"},
		{[]string{"scrubber", "--cluster", cluster, "--interval", "0s"}, "--interval"},
		{[]string{"scrubber"}, "--cluster is required"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), scrubEnv(&out, &errb, nil), tc.args)
		if code != exitUsage || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d mentioning %q", tc.args, code, errb.String(), exitUsage, tc.msg)
		}
	}
}

// TestScrubCommandFailedPass: no node answers, so the pass cannot run:
// exit 2, and the report says what it could.
func TestScrubCommandFailedPass(t *testing.T) {
	var out, errb bytes.Buffer
	env := scrubEnv(&out, &errb, map[string]string{"HOME": t.TempDir()})
	code := run(context.Background(), env, []string{"scrub", "--cluster", deadMap(t), "--progress", "none"})
	if code != exitScrubFailed {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitScrubFailed, errb.String())
	}
	if !strings.Contains(out.String(), "scrub FAILED") || !strings.Contains(errb.String(), "pass failed") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errb.String())
	}
	// The default state directory lives under $HOME, one per cluster file.
	if m, _ := filepath.Glob(filepath.Join(env.getenv("HOME"), ".local", "state", "kintsugi", "scrub-*")); len(m) != 1 {
		t.Errorf("state directories %v", m)
	}
}

func TestPrintSummary(t *testing.T) {
	m := (&placement.Map{DataShards: 4, ParityShards: 2}).WithDefaults()
	r := &scrubber.Report{
		Seconds: 2.5, Objects: 10, Bytes: 3 << 20, Buckets: 2, Markers: 1,
		ShardsVerified: 60, ShardBytes: 5 << 20, ShardsMissing: 1, ShardsCorrupt: 2, ShardsRebuilt: 2, BytesRebuilt: 2048,
		RedundancyAfter:    map[int]int64{6: 9, 3: 1},
		UnrecoverableCount: 1,
		Unrecoverable:      []scrubber.ObjectRef{{Bucket: "b", Key: "k", Version: "V", Reason: "only 3 of 6"}},
		Resumed:            1, ResumedFrom: &scrubber.Position{Phase: "walk", Bucket: "b", Key: "a"}, RunObjects: 4,
	}
	var buf bytes.Buffer
	printSummary(&buf, r, m, nil)
	for _, want := range []string{
		"scrub complete, DATA CANNOT BE REPAIRED in 2.5s\n",
		"  resumed:          1 time(s); this run took over at walk b/a and checked 4 objects\n",
		"  objects verified: 10 (3.0 MiB) in 2 buckets; 1 delete markers, 0 multipart manifests\n",
		"  shards verified:  60 (5.0 MiB hashed on the nodes, 2.1 MB/s)\n",
		"  shards missing:   1\n",
		"  shards corrupt:   2\n",
		"  shards rebuilt:   2 (2.0 KiB)\n",
		"  unrecoverable:    1 objects\n",
		"  redundancy now:   6: 9, 5: 0, 4: 0, below 4: 1\n",
		"UNRECOVERABLE b/k version V: only 3 of 6\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}
