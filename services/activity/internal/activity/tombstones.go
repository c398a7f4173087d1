package activity

import "sync"

// maxKnownDeleted bounds the in-process set of users known to be deleted (about 100 bytes
// an entry). The set is only a shortcut, the tombstone table stays the authority, so
// forgetting it costs a write and an erase, never correctness.
const maxKnownDeleted = 10_000

// knownDeleted is the set of users this process knows to be deleted: those whose deletion
// it handled and those whose tombstone one of its reads found. A tombstone is permanent
// (user ids are never reused, tombstones are never removed), so membership never goes
// stale. Only "deleted" is remembered, never "not deleted": that is true only until the
// deletion arrives, which is exactly the race the post-write check exists for.
type knownDeleted struct {
	mu    sync.Mutex
	users map[string]struct{}
}

func newKnownDeleted() *knownDeleted {
	return &knownDeleted{users: make(map[string]struct{})}
}

func (k *knownDeleted) has(uid string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.users[uid]
	return ok
}

// add records uid; call it only once uid's tombstone is written.
func (k *knownDeleted) add(uid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.users) >= maxKnownDeleted {
		clear(k.users)
	}
	k.users[uid] = struct{}{}
}
