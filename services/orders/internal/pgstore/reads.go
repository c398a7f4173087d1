package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"polyshop/services/orders/internal/orders"
)

const orderColumns = `o.id::text, o.user_id::text, o.status, coalesce(o.cancel_reason, ''), o.total_amount, o.currency,
	o.street, coalesce(o.city, ''), coalesce(o.postal_code, ''), coalesce(o.country, ''), o.created_at, o.updated_at`

func scanOrder(row pgx.Row) (orders.Order, error) {
	var (
		o      orders.Order
		status string
		street *string
		a      orders.Address
	)
	if err := row.Scan(&o.ID, &o.UserID, &status, &o.CancelReason, &o.Total.Amount, &o.Total.Currency,
		&street, &a.City, &a.PostalCode, &a.Country, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return orders.Order{}, err
	}
	o.Status = orders.Status(status)
	if street != nil {
		a.Street = *street
		o.ShippingAddress = &a
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders o WHERE o.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return orders.Order{}, orders.ErrNotFound
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	list := []orders.Order{o}
	if err := s.details(ctx, list); err != nil {
		return orders.Order{}, err
	}
	return list[0], nil
}

// details loads the lines and steps of os in two queries.
func (s *Store) details(ctx context.Context, os []orders.Order) error {
	if len(os) == 0 {
		return nil
	}
	ids := make([]string, len(os))
	at := make(map[string]int, len(os))
	for i, o := range os {
		ids[i], at[o.ID] = o.ID, i
	}
	rows, err := s.pool.Query(ctx, `SELECT order_id::text, product_id::text, name, quantity, unit_amount, currency
		FROM order_items WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, line`, ids)
	if err != nil {
		return fmt.Errorf("read order items: %w", err)
	}
	for rows.Next() {
		var (
			id string
			it orders.Item
		)
		if err := rows.Scan(&id, &it.ProductID, &it.Name, &it.Quantity, &it.UnitPrice.Amount, &it.UnitPrice.Currency); err != nil {
			rows.Close()
			return fmt.Errorf("read order items: %w", err)
		}
		os[at[id]].Items = append(os[at[id]].Items, it)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read order items: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT order_id::text, name, status, attempts, coalesce(error, ''), started_at, at
		FROM saga_steps WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, step`, ids)
	if err != nil {
		return fmt.Errorf("read saga steps: %w", err)
	}
	for rows.Next() {
		var (
			id string
			st orders.Step
		)
		if err := rows.Scan(&id, &st.Name, &st.Status, &st.Attempts, &st.Error, &st.StartedAt, &st.At); err != nil {
			rows.Close()
			return fmt.Errorf("read saga steps: %w", err)
		}
		st.StartedAt, st.At = st.StartedAt.UTC(), st.At.UTC()
		os[at[id]].Steps = append(os[at[id]].Steps, st)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read saga steps: %w", err)
	}
	return nil
}

// List implements orders.Store: keyset pagination on (created_at, id), newest first.
func (s *Store) List(ctx context.Context, q orders.ListQuery) (orders.Page, error) {
	var (
		afterAt *time.Time
		afterID *string
	)
	if q.After != nil {
		afterAt, afterID = &q.After.CreatedAt, &q.After.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders o
		WHERE ($1::uuid IS NULL OR o.user_id = $1::uuid)
		  AND ($2::text IS NULL OR o.status = $2)
		  AND ($3::timestamptz IS NULL OR (o.created_at, o.id) < ($3, $4::uuid))
		ORDER BY o.created_at DESC, o.id DESC
		LIMIT $5`, nullable(q.UserID), nullable(string(q.Status)), afterAt, afterID, q.Limit+1)
	if err != nil {
		return orders.Page{}, fmt.Errorf("list orders: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orders.Order, error) { return scanOrder(r) })
	if err != nil {
		return orders.Page{}, fmt.Errorf("list orders: %w", err)
	}
	var p orders.Page
	if len(list) > q.Limit {
		list = list[:q.Limit]
		last := list[len(list)-1]
		p.Next = &orders.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if err := s.details(ctx, list); err != nil {
		return orders.Page{}, err
	}
	p.Items = list
	return p, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SagaStats implements orders.Store.
func (s *Store) SagaStats(ctx context.Context, state orders.State) (orders.SagaStats, error) {
	st := orders.SagaStats{Counts: map[orders.State]int{}}
	for _, v := range orders.States {
		if state == "" || v == state {
			st.Counts[v] = 0
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM sagas
		WHERE ($1::text IS NULL OR state = $1) GROUP BY state`, nullable(string(state)))
	if err != nil {
		return st, fmt.Errorf("count sagas: %w", err)
	}
	for rows.Next() {
		var (
			name string
			n    int
		)
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("count sagas: %w", err)
		}
		st.Counts[orders.State(name)] = n
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count sagas: %w", err)
	}
	var (
		o     orders.OldestPending
		name  string
		since time.Time
	)
	err = s.pool.QueryRow(ctx, `SELECT order_id::text, state, created_at FROM sagas
		WHERE state NOT IN ('CONFIRMED', 'CANCELLED') AND ($1::text IS NULL OR state = $1)
		ORDER BY created_at LIMIT 1`, nullable(string(state))).Scan(&o.OrderID, &name, &since)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return st, fmt.Errorf("oldest pending saga: %w", err)
	default:
		o.State, o.Since = orders.State(name), since.UTC()
		st.OldestPending = &o
	}
	return st, nil
}

// Faults implements orders.Store.
func (s *Store) Faults(ctx context.Context) (orders.Faults, error) {
	var f orders.Faults
	if err := s.pool.QueryRow(ctx, `SELECT step_timeout_ms FROM faults WHERE id`).Scan(&f.StepTimeoutMs); err != nil {
		return f, fmt.Errorf("read faults: %w", err)
	}
	return f, nil
}

// SetFaults implements orders.Store.
func (s *Store) SetFaults(ctx context.Context, f orders.Faults) error {
	if _, err := s.pool.Exec(ctx, `UPDATE faults SET step_timeout_ms = $1 WHERE id`, f.StepTimeoutMs); err != nil {
		return fmt.Errorf("write faults: %w", err)
	}
	return nil
}
