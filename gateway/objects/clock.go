package objects

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// versionClock names versions: a hybrid logical clock in ULID form. A
// version is the larger of the physical clock (the ULID's millisecond
// timestamp, from Config.Now) and the newest version the Store has issued
// or observed in a node's answer, bumped by a random increment of the
// ULID's entropy when the milliseconds are equal. So every version it
// issues is above every version it has seen, whatever its own clock says:
// a gateway whose clock lags (or stepped back across a restart) still
// names its next write above the writes the nodes showed it.
//
// The clock only makes conflicts rare; it is not what orders writes. A
// node refuses to commit a version older than the one it holds, and a
// refusal never counts toward the write quorum, so of two acknowledged
// writes the later one has the higher version (docs/ordering.md).
//
// The increment is random, not 1, so that two gateways that observed the
// same version do not both name the next one alike.
type versionClock struct {
	now func() time.Time

	mu   sync.Mutex
	last ulid.ULID // zero: nothing issued or observed yet
}

// maxStep bounds the random entropy increment: 2^40, so that about 2^40
// versions fit in one millisecond before the clock moves to the next.
const maxStep = 1 << 40

// next returns a new version above every version issued or observed.
func (c *versionClock) next() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextLocked().String()
}

func (c *versionClock) nextLocked() ulid.ULID {
	ms := ulid.Timestamp(c.now())
	var id ulid.ULID
	if ms > c.last.Time() {
		id = newULID(ms)
	} else if bumped, ok := bump(c.last); ok {
		id = bumped
	} else if c.last.Time() < ulid.MaxTime() {
		id = newULID(c.last.Time() + 1)
	} else {
		// The largest version there is (a node's clock in year
		// 10889): nothing can be named above it, and a commit
		// under it again is refused as a conflict.
		id = c.last
	}
	c.last = id
	return id
}

// after returns stage if nothing newer was issued or observed since it
// was issued (the commit can keep the version its shards were staged
// under), else a new version.
func (c *versionClock) after(stage string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, err := ulid.ParseStrict(stage); err == nil && id == c.last {
		return stage
	}
	return c.nextLocked().String()
}

// observe moves the clock to v if v is newer. A re-code of a version, of
// any generation (client.RecodeVersion), counts as its base version: every
// version issued above that one is above all its re-codes too. Versions
// that are not ULIDs are ignored.
func (c *versionClock) observe(v string) {
	if v == "" {
		return
	}
	id, err := ulid.ParseStrict(client.BaseVersion(v))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id.Compare(c.last) > 0 {
		c.last = id
	}
}

// observeState feeds the clock the committed version a node's Stat answer
// names. Staged versions are left out: a write in progress is ordered by
// the version its own commit is named, which the nodes check.
func (s *Store) observeState(st client.KeyState) {
	if st.Committed != nil {
		s.clock.observe(st.Committed.Version)
	}
}

// newULID returns a ULID of ms with random entropy.
func newULID(ms uint64) ulid.ULID {
	var id ulid.ULID
	if err := id.SetTime(ms); err != nil {
		panic(fmt.Sprintf("objects: version time %d out of range: %v", ms, err))
	}
	// crypto/rand does not fail on supported platforms.
	rand.Read(id[6:])
	return id
}

// bump returns id with its 80-bit entropy raised by a random step in
// [1, maxStep], or false if that overflows.
func bump(id ulid.ULID) (ulid.ULID, bool) {
	var r [8]byte
	rand.Read(r[:])
	step := binary.BigEndian.Uint64(r[:])%maxStep + 1
	hi := binary.BigEndian.Uint16(id[6:8])
	lo := binary.BigEndian.Uint64(id[8:16])
	lo2 := lo + step
	if lo2 < lo {
		if hi == ^uint16(0) {
			return id, false
		}
		hi++
	}
	binary.BigEndian.PutUint16(id[6:8], hi)
	binary.BigEndian.PutUint64(id[8:16], lo2)
	return id, true
}
