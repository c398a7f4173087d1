// Package pgstore is the PostgreSQL adapter of the orders domain: orders, their lines, the
// saga rows and their steps, the local copies of customers and products, the fault
// switches, and the inbox and outbox written in the same transactions.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"polyshop/services/orders/internal/orders"
	"polyshop/services/orders/migrations"
	"polyshop/shared/events"
	"polyshop/shared/inbox/pginbox"
	"polyshop/shared/outbox/pgoutbox"
	"polyshop/shared/pgmigrate"
)

// Store implements orders.Store on a pgx pool.
type Store struct {
	pool *pgxpool.Pool
	// defaultStepTimeout applies when the faults table has no stepTimeoutMs.
	defaultStepTimeout time.Duration
}

var _ orders.Store = (*Store)(nil)

// New returns a Store using pool (migrated, see Migrate); defaultStepTimeout is the step
// timeout when no stepTimeoutMs fault switch is stored.
func New(pool *pgxpool.Pool, defaultStepTimeout time.Duration) *Store {
	return &Store{pool: pool, defaultStepTimeout: defaultStepTimeout}
}

// Migrate applies the service's embedded migrations in pool's search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pgmigrate.Apply(ctx, pool, migrations.FS); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func (s *Store) stepTimeout(ms *int) time.Duration {
	if ms != nil {
		return time.Duration(*ms) * time.Millisecond
	}
	return s.defaultStepTimeout
}

// Place implements orders.Store.
func (s *Store) Place(ctx context.Context, userID, key string, productIDs []string, fn orders.PlaceFunc) (orders.Placed, string, error) {
	var (
		out  orders.Placed
		hash string
	)
	existing := func(tx pgx.Tx) (bool, error) {
		var status string
		err := tx.QueryRow(ctx, `SELECT id::text, status, request_hash FROM orders WHERE user_id = $1 AND idempotency_key = $2`,
			userID, key).Scan(&out.ID, &status, &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read order by key: %w", err)
		}
		out.Status, out.Created = orders.Status(status), false
		return true, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if found, err := existing(tx); err != nil || found {
			return err
		}
		var (
			now    time.Time
			stepMs *int
			addr   orders.Address
			street *string
		)
		err := tx.QueryRow(ctx, `SELECT now(), (SELECT step_timeout_ms FROM faults WHERE id),
			c.street, coalesce(c.city, ''), coalesce(c.postal_code, ''), coalesce(c.country, '')
			FROM (SELECT 1) one LEFT JOIN customers c ON c.user_id = $1`, userID).
			Scan(&now, &stepMs, &street, &addr.City, &addr.PostalCode, &addr.Country)
		if err != nil {
			return fmt.Errorf("read customer copy: %w", err)
		}
		var addrp *orders.Address
		if street != nil {
			addr.Street = *street
			addrp = &addr
		}
		products := map[string]orders.Product{}
		rows, err := tx.Query(ctx, `SELECT product_id::text, name, price_amount, currency, deleted_at IS NOT NULL
			FROM products WHERE product_id = ANY($1::uuid[])`, productIDs)
		if err != nil {
			return fmt.Errorf("read product copies: %w", err)
		}
		for rows.Next() {
			var p orders.Product
			if err := rows.Scan(&p.ID, &p.Name, &p.Price.Amount, &p.Price.Currency, &p.Deleted); err != nil {
				rows.Close()
				return fmt.Errorf("read product copies: %w", err)
			}
			products[p.ID] = p
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read product copies: %w", err)
		}
		no, err := fn(ctx, now.UTC(), s.stepTimeout(stepMs), addrp, products)
		if err != nil {
			return err
		}
		o := no.Order
		a := o.ShippingAddress
		tag, err := tx.Exec(ctx, `INSERT INTO orders (id, user_id, idempotency_key, request_hash, status,
			total_amount, currency, street, city, postal_code, country, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
			ON CONFLICT (user_id, idempotency_key) DO NOTHING`,
			o.ID, o.UserID, no.Key, no.Hash, string(o.Status), o.Total.Amount, o.Total.Currency,
			a.Street, a.City, a.PostalCode, a.Country, o.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if tag.RowsAffected() == 0 {
			// A concurrent placement with the same key committed first: answer with its order.
			if found, err := existing(tx); err != nil || found {
				return err
			}
			return errors.New("insert order: conflicting order vanished")
		}
		lines, pids, names, qtys, amounts, curs := []int{}, []string{}, []string{}, []int{}, []int64{}, []string{}
		for i, it := range o.Items {
			lines, pids, names = append(lines, i), append(pids, it.ProductID), append(names, it.Name)
			qtys, amounts, curs = append(qtys, it.Quantity), append(amounts, it.UnitPrice.Amount), append(curs, it.UnitPrice.Currency)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, line, product_id, name, quantity, unit_amount, currency)
			SELECT $1, u.line, u.pid::uuid, u.name, u.qty, u.amount, u.cur
			FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::text[]) AS u(line, pid, name, qty, amount, cur)`,
			o.ID, lines, pids, names, qtys, amounts, curs); err != nil {
			return fmt.Errorf("insert order items: %w", err)
		}
		sg := no.Saga
		if _, err := tx.Exec(ctx, `INSERT INTO sagas (order_id, user_id, state, version, reason, attempt, last_failed,
			last_error, next_attempt_at, step_deadline_at, saga_deadline_at, state_since, correlation_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, NULLIF($8, ''), $9, $10, $11, $12, $13, $14, $14)`,
			sg.OrderID, sg.UserID, string(sg.State), sg.Version, sg.Reason, sg.Attempt, sg.LastFailed, sg.LastError,
			sg.NextAttemptAt, sg.StepDeadlineAt, sg.SagaDeadlineAt, sg.StateSince, sg.CorrelationID, now); err != nil {
			return fmt.Errorf("insert saga: %w", err)
		}
		if err := writeSteps(ctx, tx, sg.OrderID, sg.Steps); err != nil {
			return err
		}
		if err := pgoutbox.Add(ctx, tx, no.Envelopes...); err != nil {
			return err
		}
		out = orders.Placed{ID: o.ID, Status: o.Status, Created: true}
		hash = no.Hash
		return nil
	})
	if err != nil {
		return orders.Placed{}, "", err
	}
	return out, hash, nil
}

func writeSteps(ctx context.Context, tx pgx.Tx, orderID string, steps []orders.Step) error {
	if len(steps) == 0 {
		return nil
	}
	n := len(steps)
	idx, names, statuses, attempts, errs := make([]int, n), make([]string, n), make([]string, n), make([]int, n), make([]string, n)
	started, at := make([]time.Time, n), make([]time.Time, n)
	for i, st := range steps {
		idx[i], names[i], statuses[i], attempts[i], errs[i] = i+1, st.Name, st.Status, st.Attempts, st.Error
		started[i], at[i] = st.StartedAt, st.At
	}
	_, err := tx.Exec(ctx, `INSERT INTO saga_steps (order_id, step, name, status, attempts, error, started_at, at)
		SELECT $1, u.step, u.name, u.status, u.attempts, NULLIF(u.err, ''), u.started, u.at
		FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[])
			AS u(step, name, status, attempts, err, started, at)
		ON CONFLICT (order_id, step) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,
			error = EXCLUDED.error, at = EXCLUDED.at
		WHERE (saga_steps.status, saga_steps.attempts, saga_steps.error, saga_steps.at)
			IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.attempts, EXCLUDED.error, EXCLUDED.at)`,
		orderID, idx, names, statuses, attempts, errs, started, at)
	if err != nil {
		return fmt.Errorf("write saga steps: %w", err)
	}
	return nil
}

// lockSagaSQL locks one saga row and reads, in the same round trip, what its transitions
// need: the order's status, total and lines, the steps, the database's clock and the
// stepTimeoutMs switch.
const lockSagaSQL = `
SELECT s.order_id::text, s.user_id::text, s.state, s.version, coalesce(s.reason, ''), s.attempt, s.last_failed,
	coalesce(s.last_error, ''), s.next_attempt_at, s.step_deadline_at, s.saga_deadline_at, s.state_since,
	s.correlation_id, o.status, o.total_amount, o.currency, coalesce(o.payment_id, ''),
	now(), (SELECT step_timeout_ms FROM faults WHERE id),
	(SELECT json_agg(json_build_object('productId', i.product_id, 'quantity', i.quantity) ORDER BY i.line)
		FROM order_items i WHERE i.order_id = s.order_id),
	(SELECT json_agg(json_build_object('name', st.name, 'status', st.status, 'attempts', st.attempts,
		'error', coalesce(st.error, ''), 'startedAt', st.started_at, 'at', st.at) ORDER BY st.step)
		FROM saga_steps st WHERE st.order_id = s.order_id)
FROM sagas s JOIN orders o ON o.id = s.order_id
WHERE s.order_id = $1
FOR UPDATE OF s`

type stepJSON struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error"`
	StartedAt time.Time `json:"startedAt"`
	At        time.Time `json:"at"`
}

func (s *Store) lockSaga(ctx context.Context, tx pgx.Tx, orderID string) (orders.Saga, time.Time, time.Duration, error) {
	var (
		sg                orders.Saga
		state, status     string
		now               time.Time
		stepMs            *int
		itemsRaw, stepRaw []byte
	)
	err := tx.QueryRow(ctx, lockSagaSQL, orderID).Scan(&sg.OrderID, &sg.UserID, &state, &sg.Version, &sg.Reason,
		&sg.Attempt, &sg.LastFailed, &sg.LastError, &sg.NextAttemptAt, &sg.StepDeadlineAt, &sg.SagaDeadlineAt,
		&sg.StateSince, &sg.CorrelationID, &status, &sg.Total.Amount, &sg.Total.Currency, &sg.PaymentID,
		&now, &stepMs, &itemsRaw, &stepRaw)
	if errors.Is(err, pgx.ErrNoRows) {
		return orders.Saga{}, time.Time{}, 0, orders.ErrNotFound
	}
	if err != nil {
		return orders.Saga{}, time.Time{}, 0, fmt.Errorf("lock saga %s: %w", orderID, err)
	}
	sg.State, sg.OrderStatus = orders.State(state), orders.Status(status)
	if len(itemsRaw) > 0 {
		if err := json.Unmarshal(itemsRaw, &sg.Items); err != nil {
			return orders.Saga{}, time.Time{}, 0, fmt.Errorf("saga %s items: %w", orderID, err)
		}
	}
	if len(stepRaw) > 0 {
		var steps []stepJSON
		if err := json.Unmarshal(stepRaw, &steps); err != nil {
			return orders.Saga{}, time.Time{}, 0, fmt.Errorf("saga %s steps: %w", orderID, err)
		}
		for _, st := range steps {
			sg.Steps = append(sg.Steps, orders.Step{Name: st.Name, Status: st.Status, Attempts: st.Attempts,
				Error: st.Error, StartedAt: st.StartedAt.UTC(), At: st.At.UTC()})
		}
	}
	utc(sg.NextAttemptAt)
	utc(sg.StepDeadlineAt)
	sg.SagaDeadlineAt, sg.StateSince = sg.SagaDeadlineAt.UTC(), sg.StateSince.UTC()
	return sg, now.UTC(), s.stepTimeout(stepMs), nil
}

func utc(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// transition runs fn on the locked saga sg and writes its effects in tx.
func (s *Store) transition(ctx context.Context, tx pgx.Tx, orderID string, fn orders.SagaFunc) error {
	sg, now, stepTimeout, err := s.lockSaga(ctx, tx, orderID)
	if err != nil {
		return err
	}
	eff, err := fn(ctx, &sg, now, stepTimeout)
	if err != nil || !eff.Changed {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE sagas SET state = $2, version = $3, reason = NULLIF($4, ''), attempt = $5,
		last_failed = $6, last_error = NULLIF($7, ''), next_attempt_at = $8, step_deadline_at = $9,
		state_since = $10, updated_at = $11 WHERE order_id = $1`,
		sg.OrderID, string(sg.State), sg.Version, sg.Reason, sg.Attempt, sg.LastFailed, sg.LastError,
		sg.NextAttemptAt, sg.StepDeadlineAt, sg.StateSince, now); err != nil {
		return fmt.Errorf("update saga %s: %w", orderID, err)
	}
	if err := writeSteps(ctx, tx, sg.OrderID, sg.Steps); err != nil {
		return err
	}
	// The public status changes once; the address is erased when the order ends if its
	// user was deleted meanwhile (evaluated on the row's latest version, under its lock).
	if _, err := tx.Exec(ctx, `UPDATE orders SET updated_at = $2, payment_id = NULLIF($3, ''),
		status = CASE WHEN $4 = '' THEN status ELSE $4 END,
		cancel_reason = CASE WHEN $4 = 'CANCELLED' THEN $5 ELSE cancel_reason END,
		street = CASE WHEN $4 <> '' AND erase_address THEN NULL ELSE street END,
		city = CASE WHEN $4 <> '' AND erase_address THEN NULL ELSE city END,
		postal_code = CASE WHEN $4 <> '' AND erase_address THEN NULL ELSE postal_code END,
		country = CASE WHEN $4 <> '' AND erase_address THEN NULL ELSE country END
		WHERE id = $1`, sg.OrderID, now, sg.PaymentID, string(eff.Final), sg.Reason); err != nil {
		return fmt.Errorf("update order %s: %w", orderID, err)
	}
	return pgoutbox.Add(ctx, tx, eff.Envelopes...)
}

// UpdateSaga implements orders.Store.
func (s *Store) UpdateSaga(ctx context.Context, orderID, inboxConsumer string, e *events.Envelope, fn orders.SagaFunc) error {
	if !isUUID(orderID) {
		return orders.ErrNotFound
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if inboxConsumer != "" && e != nil {
			first, err := pginbox.Claim(ctx, tx, inboxConsumer, *e)
			if err != nil || !first {
				return err
			}
		}
		return s.transition(ctx, tx, orderID, fn)
	})
}

// ClaimDue implements orders.Store. Each saga runs under a savepoint, so one that fails is
// skipped (and retried at the next pass) without undoing the others.
func (s *Store) ClaimDue(ctx context.Context, limit int, fn orders.SagaFunc) (int, error) {
	var (
		n        int
		firstErr error
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT order_id::text FROM sagas
			WHERE state NOT IN ('CONFIRMED', 'CANCELLED') AND LEAST(next_attempt_at, step_deadline_at) <= now()
			ORDER BY LEAST(next_attempt_at, step_deadline_at)
			LIMIT $1
			FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return fmt.Errorf("claim due sagas: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("claim due sagas: %w", err)
		}
		n = len(ids)
		for _, id := range ids {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return s.transition(ctx, sp, id, fn) })
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("saga %s timer: %w", id, err)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, err
	}
	return n, firstErr
}

// ApplyCopy implements orders.Store.
func (s *Store) ApplyCopy(ctx context.Context, consumer string, e events.Envelope, c orders.CopyChange) error {
	if c.Kind == orders.CustomerAddressChanged {
		return applyAddress(ctx, s.pool, consumer, e, c)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		apply, err := pginbox.Advance(ctx, tx, consumer, e)
		if err != nil || !apply {
			return err
		}
		if err := applyCopy(ctx, tx, c); err != nil {
			return fmt.Errorf("apply %s: %w", e.Type, err)
		}
		return nil
	})
}

// applyAddress is ApplyCopy for users.address_changed (the busiest copy event) in one
// statement, so one round trip instead of four (BEGIN, pginbox.Advance, upsert, COMMIT):
// under CPU contention every round trip waits for both processes to be scheduled, and
// that wait, not the work, made the copy's latency (README, "Address copy latency"). The
// CTE is pginbox.Advance's statement; the customers row is written only when it advanced
// the user's sequence, and both commit together (a single statement is atomic). Two
// deliveries for one user serialize on the aggregate_seq row as in the transaction.
func applyAddress(ctx context.Context, pool *pgxpool.Pool, consumer string, e events.Envelope, c orders.CopyChange) error {
	a := c.Address
	_, err := pool.Exec(ctx, `
WITH adv AS (
	INSERT INTO aggregate_seq (consumer, aggregate, seq) VALUES ($1, $2, $3)
	ON CONFLICT (consumer, aggregate) DO UPDATE SET seq = EXCLUDED.seq
	WHERE aggregate_seq.seq < EXCLUDED.seq
	RETURNING 1
)
INSERT INTO customers (user_id, street, city, postal_code, country, updated_at)
SELECT $4::uuid, $5::text, $6::text, $7::text, $8::text, now() WHERE EXISTS (SELECT 1 FROM adv)
ON CONFLICT (user_id) DO UPDATE SET street = EXCLUDED.street, city = EXCLUDED.city,
	postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, updated_at = now()`,
		consumer, pginbox.AggregateKey(e), e.Sequence, c.UserID, a.Street, a.City, a.PostalCode, a.Country)
	if err != nil {
		return fmt.Errorf("apply %s: %w", e.Type, err)
	}
	return nil
}

// ApplyCopyState implements orders.Store.
func (s *Store) ApplyCopyState(ctx context.Context, consumer string, changes []orders.VersionedChange) error {
	for _, vc := range changes {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			apply, err := pginbox.AdvanceState(ctx, tx, consumer, vc.Key, vc.Version)
			if err != nil || !apply {
				return err
			}
			return applyCopy(ctx, tx, vc.Change)
		})
		if err != nil {
			return fmt.Errorf("apply %s at version %d: %w", vc.Key, vc.Version, err)
		}
	}
	return nil
}

// applyCopy writes one change to a local copy inside tx.
func applyCopy(ctx context.Context, tx pgx.Tx, c orders.CopyChange) error {
	var err error
	switch c.Kind {
	case orders.CustomerRegistered:
		_, err = tx.Exec(ctx, `INSERT INTO customers (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, c.UserID)
	case orders.CustomerAddressChanged:
		a := c.Address
		_, err = tx.Exec(ctx, `INSERT INTO customers (user_id, street, city, postal_code, country, updated_at)
			VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (user_id) DO UPDATE SET street = EXCLUDED.street, city = EXCLUDED.city,
				postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, updated_at = now()`,
			c.UserID, a.Street, a.City, a.PostalCode, a.Country)
	case orders.CustomerDeleted:
		if _, err = tx.Exec(ctx, `DELETE FROM customers WHERE user_id = $1`, c.UserID); err != nil {
			break
		}
		// One statement, each row judged on its latest version under its lock: a
		// terminal order loses its address now, a pending one when it ends.
		_, err = tx.Exec(ctx, `UPDATE orders SET
			street = CASE WHEN status = 'PENDING' THEN street END,
			city = CASE WHEN status = 'PENDING' THEN city END,
			postal_code = CASE WHEN status = 'PENDING' THEN postal_code END,
			country = CASE WHEN status = 'PENDING' THEN country END,
			erase_address = (status = 'PENDING')
			WHERE user_id = $1`, c.UserID)
	case orders.ProductUpserted:
		p := c.Product
		_, err = tx.Exec(ctx, `INSERT INTO products (product_id, name, price_amount, currency, updated_at)
			VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (product_id) DO UPDATE SET name = EXCLUDED.name, price_amount = EXCLUDED.price_amount,
				currency = EXCLUDED.currency, updated_at = now()`,
			p.ID, p.Name, p.Price.Amount, p.Price.Currency)
	case orders.ProductDeleted:
		// The row stays (named in the 422 of an order for it); a record brings the name.
		p := c.Product
		_, err = tx.Exec(ctx, `INSERT INTO products (product_id, name, price_amount, currency, deleted_at, updated_at)
			VALUES ($1, $2, $3, $4, now(), now())
			ON CONFLICT (product_id) DO UPDATE SET deleted_at = now(), updated_at = now()`,
			p.ID, p.Name, max(p.Price.Amount, 0), p.Price.Currency)
	case orders.CustomerReplaced:
		var street, city, postal, country *string
		if a := c.Address; a != nil {
			street, city, postal, country = &a.Street, &a.City, &a.PostalCode, &a.Country
		}
		_, err = tx.Exec(ctx, `INSERT INTO customers (user_id, street, city, postal_code, country, updated_at)
			VALUES ($1, $2, $3, $4, $5, now())
			ON CONFLICT (user_id) DO UPDATE SET street = EXCLUDED.street, city = EXCLUDED.city,
				postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, updated_at = now()`,
			c.UserID, street, city, postal, country)
	default:
		return fmt.Errorf("apply copy: unknown kind %d", c.Kind)
	}
	return err
}
