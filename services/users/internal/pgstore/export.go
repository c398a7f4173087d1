package pgstore

import (
	"context"
	"fmt"

	"polyshop/services/users/internal/users"
)

// Export implements users.Store: one statement per page, deleted rows included (their
// address is already erased).
func (s *Store) Export(ctx context.Context, after string, limit int) ([]users.User, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM users WHERE id > $1::uuid ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("export users: %w", err)
	}
	defer rows.Close()
	var out []users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export users: %w", err)
	}
	return out, nil
}
