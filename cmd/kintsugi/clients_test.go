package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// clientSessions are the scripted sessions of scripts/clients, each with
// the programs it needs and the Debian package that has them.
var clientSessions = []struct {
	name, script string
	check        []string // a command that succeeds when the client is usable
	pkg          string
}{
	{"awscli", "awscli.sh", []string{"aws", "--version"}, "awscli"},
	{"awscli-versioning", "awscli_versioning.sh", []string{"aws", "--version"}, "awscli"},
	{"s3cmd", "s3cmd.sh", []string{"s3cmd", "--version"}, "s3cmd"},
	{"rclone", "rclone.sh", []string{"rclone", "version"}, "rclone"},
	{"boto3", "boto3.sh", []string{"python3", "-c", "import boto3"}, "python3-boto3"},
}

// TestClientScripts runs the real S3 clients' sessions against a
// multi-process cluster: aws cli, s3cmd, rclone and boto3, each uploading
// and downloading a small and a 100 MiB object, listing, syncing a tree,
// reading ranges, copying, deleting and failing with a wrong secret and a
// missing key, exactly as a user would.
//
// A client that is not installed is skipped with a loud message; with
// CI=true it fails the test instead. The distribution's programs (/usr/bin)
// are preferred over others on PATH, since they are what CI installs.
func TestClientScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test with external clients; run without -short")
	}
	ci := os.Getenv("CI") == "true"
	path := "/usr/bin:/bin:" + os.Getenv("PATH")
	scripts, err := filepath.Abs(filepath.Join("..", "..", "scripts", "clients"))
	if err != nil {
		t.Fatal(err)
	}
	available := map[string]bool{}
	for _, s := range clientSessions {
		cmd := exec.Command(s.check[0], s.check[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		available[s.name] = cmd.Run() == nil
	}

	var c *proctest.Cluster
	var big string
	for _, ok := range available {
		if ok {
			c = proctest.StartCluster(t, testBin, proctest.Options{})
			big = writeBigFile(t, filepath.Join(c.Dir, "big.bin"), 100<<20)
			break
		}
	}
	for _, s := range clientSessions {
		t.Run(s.name, func(t *testing.T) {
			// The sessions work in buckets of their own and assert no
			// timing: they share the cluster at once, which halves the
			// test's time (the aws cli's is mostly its start-up, per call).
			t.Parallel()
			if !available[s.name] {
				msg := "\n\n" + strings.Repeat("*", 72) + "\n*** " + s.name + " is not installed: its client session did NOT run.\n" +
					"*** Install it with: apt-get install -y " + s.pkg + "\n" + strings.Repeat("*", 72) + "\n"
				if ci {
					t.Fatal(msg + "*** CI=true: every client is required.")
				}
				t.Skip(msg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", filepath.Join(scripts, s.script))
			cmd.Env = append(os.Environ(),
				"PATH="+path,
				"KINTSUGI_ENDPOINT="+c.Endpoint(0),
				"KINTSUGI_ACCESS_KEY="+c.AccessKey,
				"KINTSUGI_SECRET_KEY="+c.SecretKey,
				"BUCKET="+s.name+"-session",
				"WORK="+t.TempDir(),
				"BIG_FILE="+big,
			)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s session failed (%v) after %v:\n%s\n%s", s.name, err, time.Since(start).Round(time.Second), out, c.Logs())
			}
			t.Logf("%s session passed in %v:\n%s", s.name, time.Since(start).Round(time.Second), out)
		})
	}
}

// writeBigFile writes size deterministic bytes to path and returns path.
func writeBigFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, newGen(42, size)); err != nil {
		t.Fatal(err)
	}
	return path
}
