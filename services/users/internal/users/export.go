package users

import (
	"context"
	"fmt"
)

// Export returns a page of every user, deleted ones included, in id order after the id
// after, for read models rebuilding from users (shared/rebuild: orders' address copy).
// Each user carries its version, the sequence of its latest event. Pages are not one
// snapshot; a rebuild compares versions per user.
func (s *Service) Export(ctx context.Context, after string, limit int) ([]User, error) {
	us, err := s.store.Export(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export users: %w", err)
	}
	return us, nil
}
