package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionStamp is stamped at link time: go build -ldflags "-X main.versionStamp=v1.2.3".
// `make build` and `make image` set it from git describe.
var versionStamp string

// buildVersion is the stamped version, else what the Go toolchain recorded
// (a module version, or the VCS revision of a plain go build).
func buildVersion() string {
	if versionStamp != "" {
		return versionStamp
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v = s.Value[:12]
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

// runVersion is `kintsugi version`: the version, then the toolchain.
func runVersion(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi version", flag.ContinueOnError)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "kintsugi %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
