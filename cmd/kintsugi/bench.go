package main

import (
	"context"

	"github.com/kintsugi-store/kintsugi/bench"
)

// runBench is `kintsugi bench`, the S3 load generator; the bench package
// owns its flags, so that they are tested next to the code they drive.
func runBench(ctx context.Context, env *environ, args []string) error {
	code := bench.Main(ctx, args, bench.Env{
		Stdout: env.stdout,
		Stderr: env.stderr,
		Getenv: env.getenv,
		Logger: env.logger,
	})
	if code != bench.ExitOK {
		return exitError{code: code} // Main has said why
	}
	return nil
}
