package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestClockOffsetUsage: every command that runs a process with a clock
// refuses an unparsable KINTSUGI_CLOCK_OFFSET as a usage error before it
// starts serving.
func TestClockOffsetUsage(t *testing.T) {
	cluster := deadMap(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"dev", "--data", filepath.Join(dir, "dev")},
		{"gateway", "--cluster", cluster},
		{"storagenode", "--id", "n1", "--data", filepath.Join(dir, "n1")},
		{"scrub", "--cluster", cluster, "--state", filepath.Join(dir, "scrub")},
		{"scrubber", "--cluster", cluster, "--state", filepath.Join(dir, "scrubber")},
	} {
		var out, errb bytes.Buffer
		env := scrubEnv(&out, &errb, map[string]string{"KINTSUGI_CLOCK_OFFSET": "10"})
		code := run(context.Background(), env, args)
		if code != exitUsage || !strings.Contains(errb.String(), `KINTSUGI_CLOCK_OFFSET="10"`) {
			t.Errorf("%q: exit %d, stderr %q; want %d naming the offset", args, code, errb.String(), exitUsage)
		}
		if out.Len() > 0 {
			t.Errorf("%q: printed %q before refusing", args, out.String())
		}
	}
}
