//go:build !unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// lockFile creates path exclusively, waiting up to wait for another holder
// to remove it, and returns its release. Without flock a crashed holder
// leaves the file behind; it must then be removed by hand.
func lockFile(ctx context.Context, path string, wait time.Duration) (func(), error) {
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("lock %s: %w (another admin command holds it, or one crashed: remove the file)", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
