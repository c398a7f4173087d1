package orders

import (
	"context"
	"errors"
)

// The lab pattern switch orders.addressCopy (shared/chaos). async (the default): Place
// takes the shipping address from the local copy that users' events keep (customers
// table), so placing an order needs nothing from users. sync: Place asks users' API for
// the address at order time, with a short timeout, instead — the coupling the copy avoids:
// while users is down or slow, no order can be placed (ErrUsersUnavailable, 503).

// ErrUsersUnavailable: in sync mode, users did not answer the address read in time.
var ErrUsersUnavailable = errors.New("users did not answer the address read")

// AddressSource is where Place reads the address in sync mode.
type AddressSource struct {
	// Sync reports whether the switch is on sync now (read once per order).
	Sync func() bool
	// Read returns the user's current address from users (nil: unknown or deleted user, or
	// no address set), or an error wrapping ErrUsersUnavailable.
	Read func(ctx context.Context, userID string) (*Address, error)
}

// SetAddressSource sets the sync-mode address source; call it before the service is used.
func (s *Service) SetAddressSource(a AddressSource) { s.addrs = &a }

// syncAddress reads the address from users when the switch is on sync; sync is false in
// async mode.
func (s *Service) syncAddress(ctx context.Context, userID string) (addr *Address, sync bool, err error) {
	if s.addrs == nil || s.addrs.Sync == nil || !s.addrs.Sync() {
		return nil, false, nil
	}
	addr, err = s.addrs.Read(ctx, userID)
	return addr, true, err
}
