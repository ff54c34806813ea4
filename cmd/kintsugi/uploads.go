package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

// sweepUploads runs the store's multipart sweep (stale uploads aborted,
// unreferenced parts freed) every interval until ctx is done. The first
// run waits a random part of the interval, so that gateways started
// together do not sweep together; the sweep is idempotent anyway.
func sweepUploads(ctx context.Context, logger *slog.Logger, s *objects.Store, every, expiry, lifecycleDay time.Duration) {
	if every <= 0 {
		return
	}
	wait := rand.N(every)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = every
		rep, err := s.SweepUploads(ctx, &objects.SweepOptions{Expiry: expiry, LifecycleDay: lifecycleDay})
		switch {
		case err != nil:
			logger.Warn("multipart sweep failed", "err", err)
		case rep.Expired > 0 || rep.Freed > 0 || rep.Errors > 0:
			logger.Info("multipart sweep", "buckets", rep.Buckets, "expired_uploads", rep.Expired,
				"freed_parts", rep.Freed, "errors", rep.Errors)
		}
	}
}
