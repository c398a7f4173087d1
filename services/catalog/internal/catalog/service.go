package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Page limits of List.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Service implements the catalog's use cases on top of a Store. It is safe for concurrent
// use.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service using store.
func NewService(store Store) *Service {
	return &Service{store: store, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
}

// Create validates np and stores a new product at version 1 with its product_created event.
func (s *Service) Create(ctx context.Context, np NewProduct) (Product, error) {
	var v Validation
	p := Product{
		Name:        validateName(np.Name, &v),
		Description: validateDescription(np.Description, &v),
		Price:       validatePrice(np.Price, &v),
		Category:    np.Category,
	}
	if c, ok := validateCategory(np.Category, &v); ok {
		p.Attributes = c.NormalizeAttributes(np.Attributes, &v)
	}
	if np.InitialStock != nil {
		switch st := *np.InitialStock; {
		case st < 0:
			v.Add("initialStock", "must not be negative")
		case st > MaxInitialStock:
			v.Add("initialStock", fmt.Sprintf("must be at most %d", MaxInitialStock))
		default:
			p.InitialStock = st
		}
	}
	if err := v.Err(); err != nil {
		return Product{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Product{}, fmt.Errorf("new product id: %w", err)
	}
	now := s.now()
	p.ID, p.Version, p.CreatedAt, p.UpdatedAt = id.String(), 1, now, now
	e, err := events.New(ctx, events.TypeProductCreated, p.ID, p.Version, events.ProductCreated{
		ProductID: p.ID, Name: p.Name, Description: p.Description, Category: p.Category,
		Price: p.Price, Attributes: p.Attributes, InitialStock: p.InitialStock, CreatedAt: now,
	})
	if err != nil {
		return Product{}, fmt.Errorf("product_created event: %w", err)
	}
	if err := s.store.Insert(ctx, p, []events.Envelope{e}); err != nil {
		return Product{}, fmt.Errorf("insert product: %w", err)
	}
	return p, nil
}

// Get returns a live product.
func (s *Service) Get(ctx context.Context, id string) (Product, error) {
	if !validID(id) {
		return Product{}, ErrNotFound
	}
	p, err := s.store.Get(ctx, id)
	if err != nil {
		return Product{}, err
	}
	if p.Deleted {
		return Product{}, ErrNotFound
	}
	return p, nil
}

// Update applies patch to a live product. When patch.Version is set and is not the current
// version the result is ErrVersionConflict. A change emits product_updated with the full
// new state and, when the price differs, product_price_changed; both carry the new version
// as their sequence. A patch that changes nothing returns the product unchanged, without a
// new version or events.
func (s *Service) Update(ctx context.Context, id string, patch Patch) (Product, error) {
	if !validID(id) {
		return Product{}, ErrNotFound
	}
	if patch.Version != nil && *patch.Version < 1 {
		return Product{}, &Validation{Fields: []FieldProblem{{"version", "must be a positive integer"}}}
	}
	return s.store.Update(ctx, id, func(p *Product) ([]events.Envelope, error) {
		if p.Deleted {
			return nil, ErrNotFound
		}
		if patch.Version != nil && *patch.Version != p.Version {
			return nil, fmt.Errorf("%w: expected version %d, current is %d", ErrVersionConflict, *patch.Version, p.Version)
		}
		var v Validation
		next := *p
		if patch.Name != nil {
			next.Name = validateName(*patch.Name, &v)
		}
		if patch.Description != nil {
			next.Description = validateDescription(*patch.Description, &v)
		}
		if patch.Price != nil {
			next.Price = validatePrice(patch.Price, &v)
		}
		if patch.Category != nil || patch.Attributes != nil {
			if patch.Category != nil {
				next.Category = *patch.Category
			}
			attrs := patch.Attributes
			if attrs == nil {
				attrs = p.Attributes
			}
			if c, ok := validateCategory(next.Category, &v); ok {
				next.Attributes = c.NormalizeAttributes(attrs, &v)
			}
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		if sameState(*p, next) {
			return nil, nil
		}
		now := s.now()
		next.Version, next.UpdatedAt = p.Version+1, now
		upd, err := events.New(ctx, events.TypeProductUpdated, p.ID, next.Version, events.ProductUpdated{
			ProductID: p.ID, Name: next.Name, Description: next.Description, Category: next.Category,
			Price: next.Price, Attributes: next.Attributes, UpdatedAt: now,
		})
		if err != nil {
			return nil, fmt.Errorf("product_updated event: %w", err)
		}
		evs := []events.Envelope{upd}
		if next.Price != p.Price {
			pc, err := events.New(ctx, events.TypeProductPriceChanged, p.ID, next.Version, events.ProductPriceChanged{
				ProductID: p.ID, Old: p.Price, New: next.Price, ChangedAt: now,
			})
			if err != nil {
				return nil, fmt.Errorf("product_price_changed event: %w", err)
			}
			evs = append(evs, pc)
		}
		*p = next
		return evs, nil
	})
}

// Delete soft-deletes a live product; expected, when not nil, must be its current version.
// It emits product_deleted with the new version.
func (s *Service) Delete(ctx context.Context, id string, expected *int64) error {
	if !validID(id) {
		return ErrNotFound
	}
	_, err := s.store.Update(ctx, id, func(p *Product) ([]events.Envelope, error) {
		if p.Deleted {
			return nil, ErrNotFound
		}
		if expected != nil && *expected != p.Version {
			return nil, fmt.Errorf("%w: expected version %d, current is %d", ErrVersionConflict, *expected, p.Version)
		}
		now := s.now()
		p.Version, p.UpdatedAt, p.Deleted, p.DeletedAt = p.Version+1, now, true, &now
		e, err := events.New(ctx, events.TypeProductDeleted, p.ID, p.Version, events.ProductDeleted{
			ProductID: p.ID, DeletedAt: now,
		})
		if err != nil {
			return nil, fmt.Errorf("product_deleted event: %w", err)
		}
		return []events.Envelope{e}, nil
	})
	return err
}

// List returns a page of live products and the id to continue after ("" on the last page).
func (s *Service) List(ctx context.Context, q ListQuery) ([]Product, string, error) {
	if q.After != "" && !validID(q.After) {
		return nil, "", ErrBadCursor
	}
	var v Validation
	if q.Category != "" {
		validateCategory(q.Category, &v)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		v.Add("limit", fmt.Sprintf("must be between 1 and %d", MaxLimit))
	}
	if err := v.Err(); err != nil {
		return nil, "", err
	}
	// One extra row tells whether another page follows without a second query.
	want := q.Limit
	q.Limit++
	ps, err := s.store.List(ctx, q)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ps) > want {
		ps = ps[:want]
		next = ps[want-1].ID
	}
	return ps, next, nil
}

// Count returns the number of live products.
func (s *Service) Count(ctx context.Context) (int64, error) { return s.store.Count(ctx) }

func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && len(id) == 36 && u.String() == id
}

func sameState(a, b Product) bool {
	if a.Name != b.Name || a.Description != b.Description || a.Category != b.Category || a.Price != b.Price {
		return false
	}
	return equalValues(a.Attributes, b.Attributes)
}
