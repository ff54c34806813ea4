package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// loadCredentials gathers S3 key pairs from KINTSUGI_ACCESS_KEY and
// KINTSUGI_SECRET_KEY and from a credentials file: one "ACCESS_KEY SECRET_KEY"
// pair per line, '#' starts a comment.
func loadCredentials(env *environ, file string) (sigv4.StaticCredentials, error) {
	creds := sigv4.StaticCredentials{}
	ak, sk := env.getenv("KINTSUGI_ACCESS_KEY"), env.getenv("KINTSUGI_SECRET_KEY")
	switch {
	case ak != "" && sk != "":
		creds[ak] = sk
	case ak != "" || sk != "":
		return nil, usageErr("KINTSUGI_ACCESS_KEY and KINTSUGI_SECRET_KEY must be set together")
	}
	if file == "" {
		return creds, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageErr("--credentials: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, usageErr("--credentials %s:%d: want \"ACCESS_KEY SECRET_KEY\"", file, n)
		}
		if len(fields[0]) < 3 || len(fields[1]) < 8 {
			return nil, usageErr("--credentials %s:%d: access key must be >= 3 and secret >= 8 characters", file, n)
		}
		creds[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read credentials %s: %w", file, err)
	}
	return creds, nil
}
