package storagenode

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestRaftHeldMap(t *testing.T) {
	ctx := context.Background()
	secret := []byte("secret")
	tn := startNode(t, "", func(c *Config) { c.Secret = secret })
	// Without a group the cluster API is absent and pushes work as before.
	resp, err := http.Get(tn.srv.URL + "/v1/cluster/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned cluster call: %d, want 401", resp.StatusCode)
	}
	if err := tn.c.PutMap(ctx, testMap(2, 3)); err != nil {
		t.Fatal(err)
	}

	var served int
	tn.ServeCluster(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	tests := []struct {
		name    string
		install uint64 // InstallMap of this epoch, or 0
		push    uint64 // PutMap of this epoch, or 0
		kind    kerr.Kind
		epoch   uint64 // the node's afterwards
	}{
		{name: "log raises", install: 4, epoch: 4},
		{name: "replayed entry ignored", install: 3, epoch: 4},
		{name: "push of the same map", push: 4, epoch: 4},
		{name: "push cannot raise", push: 5, kind: kerr.Conflict, epoch: 4},
		{name: "log raises again", install: 6, epoch: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.install > 0 {
				err = tn.InstallMap(testMap(tt.install, 3))
			} else {
				err = tn.c.PutMap(ctx, testMap(tt.push, 3))
			}
			if tt.kind == kerr.Other && err != nil || tt.kind != kerr.Other && !kerr.Is(tt.kind, err) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if tt.kind == kerr.Conflict && !strings.Contains(err.Error(), "held by Raft") {
				t.Fatalf("refusal %q does not say why", err)
			}
			got, err := tn.c.GetMap(ctx)
			if err != nil || got.Epoch != tt.epoch || tn.mapEpoch() != tt.epoch {
				t.Fatalf("stored %v (%v), fencing at %d; want epoch %d", got, err, tn.mapEpoch(), tt.epoch)
			}
		})
	}
	// A stale call is fenced with the Raft-committed epoch.
	if _, err := tn.c.List(client.WithFence(ctx, client.NewFence(5, nil)), "bk", "", "", 10); !errors.Is(err, client.ErrStaleMap) {
		t.Fatalf("call under epoch 5 at a node of epoch 6: %v, want ErrStaleMap", err)
	}
	req, _ := http.NewRequest(http.MethodGet, tn.srv.URL+"/v1/cluster/status", nil)
	client.Sign(req, secret, client.BodyDigest(nil), time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK || served != 1 {
		t.Fatalf("signed cluster call: %v, %v; served %d", resp, err, served)
	}
}
