package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		MovesPlanned: 7, MovesDone: 5, MovesFailed: 2, BytesMoved: 3 << 10, CopiesDropped: 6, MapEpoch: 4,
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
		"  rebalance:        5 of 7 shard moves done (3.0 KiB moved), 2 failed, 6 old copies dropped; map epoch 4\n",
		"  unrecoverable:    1 objects\n",
		"  redundancy now:   6: 9, 5: 0, 4: 0, below 4: 1\n",
		"UNRECOVERABLE b/k version V: only 3 of 6\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestPrintScrubber checks the rebalance display of `admin status
// --scrubber`, from a daemon's /status.
func TestPrintScrubber(t *testing.T) {
	st := scrubber.Status{
		Running:       true,
		MapEpoch:      3,
		MovesInFlight: 2,
		Progress: &scrubber.Progress{Phase: scrubber.PhaseRepair, Objects: 120, Estimated: 400, Queue: 15,
			MovesPlanned: 52, MovesDone: 37, MovesFailed: 1, BytesMoved: 12 << 20},
		LastPass: &scrubber.Report{Objects: 390, MapEpoch: 2, MovesPlanned: 48, MovesDone: 48, BytesMoved: 3 << 20, CopiesDropped: 48,
			Finished: time.Date(2025, 5, 6, 7, 8, 9, 0, time.Local)},
		Redundancy: []scrubber.Level{{Level: "6", Objects: 390}, {Level: "5", Objects: 0}, {Level: "4", Objects: 0}, {Level: "below 4", Objects: 0}},
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	printScrubber(&buf, raw, 4)
	want := `
scrubber: map epoch 3 (behind the file's 4; it re-reads its cluster file)
  pass running:  phase repair, 120 of about 400 objects checked, 15 queued for repair or moves
  rebalance:     37 of 52 shard moves done (12.0 MiB moved), 1 failed, 2 in flight
  last pass:     complete, finished 2025-05-06 07:08:09, 390 objects, epoch 2
  its rebalance: 48 of 48 shard moves done (3.0 MiB moved), 0 failed, 48 old copies dropped
  redundancy:    6: 390, 5: 0, 4: 0, below 4: 0
`
	if buf.String() != want {
		t.Errorf("printScrubber:\n%s\nwant:\n%s", buf.String(), want)
	}
	// Not a scrubber's status: shown as it is.
	buf.Reset()
	printScrubber(&buf, json.RawMessage(`["x"]`), 4)
	if buf.String() != "\nscrubber:\n  [\n    \"x\"\n  ]\n" {
		t.Errorf("printScrubber of other JSON = %q", buf.String())
	}
}
