package payments

import (
	"context"
	"fmt"
)

// List returns up to limit payments, tombstones included, with ids after after ("" for the
// first page), in id order: every payment, for operators and the auditor, which checks
// that each one belongs to an existing order and refunds no more than it charged. It
// answers ErrDown while the down switch is on, and a *FieldError for an after that is not
// a payment id.
func (s *Service) List(ctx context.Context, after string, limit int) ([]Payment, error) {
	if after != "" {
		if err := validUUID("cursor", after); err != nil {
			return nil, err
		}
	}
	f, err := s.store.Faults(ctx)
	if err != nil {
		return nil, err
	}
	if f.Down {
		return nil, ErrDown
	}
	ps, err := s.store.List(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return ps, nil
}
