package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gofrs/flock"
	"github.com/kintsugi-store/kintsugi/internal/atomicfile"
	"github.com/kintsugi-store/kintsugi/placement"
)

// change applies c to the cluster file as one compare-and-set:
//
//  1. read the file (epoch E) and apply c to it, as a change expecting
//     --expect-epoch if given (placement.Map.Apply: epoch E+1, validated);
//  2. take the exclusive lock (FILE.lock) and read the file again: if it
//     is no longer the map read in step 1, another change won, and this one
//     fails with exit code 3 without writing anything;
//  3. replace the file atomically (internal/atomicfile), release the lock;
//  4. offer the new map to every node that was not removed; a node that
//     holds a map of the same epoch with other content, or a newer one,
//     refuses it (exit code 3 as well).
func (a *admin) change(ctx context.Context, c placement.Change) error {
	if a.rc != nil {
		return a.raftChange(ctx, c)
	}
	m0, raw0, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	if a.o.expect >= 0 {
		c = c.Expecting(uint64(a.o.expect))
	}
	m, err := m0.Apply(c)
	if ce := (*placement.ConflictError)(nil); errors.As(err, &ce) {
		return conflictErr(ce.Expected, ce.Current)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	lock := flock.New(a.o.cluster + ".lock")
	lctx, cancel := context.WithTimeout(ctx, adminLockWait)
	_, err = lock.TryLockContext(lctx, 20*time.Millisecond)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: lock %s: %w (another admin command holds it?)", c, lock.Path(), err)
	}
	cur, raw, err := readClusterFile(a.o.cluster)
	if err == nil && (cur.Epoch != m0.Epoch || !bytes.Equal(raw, raw0)) {
		err = conflictErr(m0.Epoch, cur.Epoch)
	}
	if err == nil {
		err = atomicfile.WriteFile(a.o.cluster, data, 0o644)
	}
	if uerr := lock.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	return a.report(changeResult{Change: c.String(), Epoch: m.Epoch, Previous: m0.Epoch, Push: a.push(ctx, m)})
}

func conflictErr(read, now uint64) error {
	if read == now {
		return exitError{code: exitConflict, err: fmt.Errorf("conflict: the cluster file changed at epoch %d while this change was prepared; check it and run the command again", now)}
	}
	return exitError{code: exitConflict, err: fmt.Errorf("conflict: map epoch changed from %d to %d; check the new map and run the command again", read, now)}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
