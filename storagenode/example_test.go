package storagenode_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A Local is a node client for a node in the same process: whatever takes
// a *client.Client's methods can be given one.
func ExampleNewLocal() {
	dir, err := os.MkdirTemp("", "node")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n, err := storagenode.Open(storagenode.Config{ID: "n1", Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	c := storagenode.NewLocal(n, nil)
	ctx := context.Background()
	if err := c.PutBucket(ctx, client.BucketRecord{Name: "photos", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M30", Created: time.Now()}); err != nil {
		log.Fatal(err)
	}
	b, err := c.GetBucket(ctx, "photos")
	fmt.Println(b.Name, err)
	_, err = c.GetBucket(ctx, "videos")
	fmt.Println(kerr.KindOf(err)) // as a remote node's answer would be
	// Output:
	// photos <nil>
	// not exist
}
