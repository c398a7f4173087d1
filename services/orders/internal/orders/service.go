package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"polyshop/shared/events"
)

// Limits of a new order.
const (
	MaxKeyLen   = 200
	MaxLines    = 50
	MaxQuantity = 100
	// MaxStepTimeoutMs bounds the stepTimeoutMs fault switch (10 minutes).
	MaxStepTimeoutMs = 600_000
)

// Service places orders, answers reads, and drives sagas through the Machine.
type Service struct {
	store Store
	m     *Machine
	log   *slog.Logger
	// copies and rebuilding: RebuildCopies (rebuild.go).
	copies     *CopySources
	rebuilding sync.Mutex
	// addrs is the address source of the pattern switch orders.addressCopy (addresscopy.go).
	addrs *AddressSource
}

// NewService returns a Service over store with the saga timing t.
func NewService(store Store, t Timing, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, m: NewMachine(t), log: log}
}

// Machine returns the saga state machine.
func (s *Service) Machine() *Machine { return s.m }

// Place creates an order for userID from lines, idempotently per (userID, key): the same
// key with the same lines returns the existing order (Created false); with other lines it
// is ErrKeyReused. The order, its saga, the reserve command and order_placed are written in
// one transaction.
func (s *Service) Place(ctx context.Context, userID, key string, lines []Line) (Placed, error) {
	if key == "" {
		return Placed{}, &BadRequestError{"Idempotency-Key", "header is required"}
	}
	if len(key) > MaxKeyLen || !utf8.ValidString(key) {
		return Placed{}, &BadRequestError{"Idempotency-Key", fmt.Sprintf("must be 1 to %d characters", MaxKeyLen)}
	}
	if err := validateShape(userID, lines); err != nil {
		return Placed{}, err
	}
	hash := requestHash(lines)
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	// orders.addressCopy=sync: the address comes from users now, not from the local copy
	// (read before the transaction: no transaction waits on another service).
	synced, sync, err := s.syncAddress(ctx, userID)
	if err != nil {
		return Placed{}, err
	}
	p, existingHash, err := s.store.Place(ctx, userID, key, ids, func(ctx context.Context, now time.Time, stepTimeout time.Duration, addr *Address, products map[string]Product) (NewOrder, error) {
		if sync {
			addr = synced
		}
		return s.build(ctx, userID, key, hash, lines, now, stepTimeout, addr, products)
	})
	if err != nil {
		return Placed{}, err
	}
	if !p.Created && existingHash != hash {
		return Placed{}, ErrKeyReused
	}
	return p, nil
}

// validateShape checks what needs no local copy.
func validateShape(userID string, lines []Line) error {
	var errs Invalid
	if !isUUID(userID) {
		errs = append(errs, &ValidationError{"userId", "must be a UUID"})
	}
	switch {
	case len(lines) == 0:
		errs = append(errs, &ValidationError{"items", "must have at least one line"})
	case len(lines) > MaxLines:
		errs = append(errs, &ValidationError{"items", fmt.Sprintf("must have at most %d lines", MaxLines)})
	}
	seen := map[string]int{}
	for i, l := range lines {
		f := "items[" + strconv.Itoa(i) + "]."
		if !isUUID(l.ProductID) {
			errs = append(errs, &ValidationError{f + "productId", "must be a UUID"})
		} else if j, dup := seen[strings.ToLower(l.ProductID)]; dup {
			errs = append(errs, &ValidationError{f + "productId", fmt.Sprintf("repeats items[%d]; send one line per product", j)})
		} else {
			seen[strings.ToLower(l.ProductID)] = i
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			errs = append(errs, &ValidationError{f + "quantity", fmt.Sprintf("must be from 1 to %d", MaxQuantity)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// requestHash identifies an order request's content for the idempotency check: the lines
// sorted by product id, so the same lines in another order are the same request.
func requestHash(lines []Line) string {
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = strings.ToLower(l.ProductID) + "*" + strconv.Itoa(l.Quantity)
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(sum[:])
}

// build validates lines against the local copies and builds the order, its saga and the
// first envelopes.
func (s *Service) build(ctx context.Context, userID, key, hash string, lines []Line, now time.Time, stepTimeout time.Duration, addr *Address, products map[string]Product) (NewOrder, error) {
	var errs Invalid
	if addr == nil {
		errs = append(errs, &ValidationError{"userId", "has no shipping address on file (unknown or deleted user, or no address set yet)"})
	}
	items := make([]Item, 0, len(lines))
	var currency string
	var total int64
	for i, l := range lines {
		f := "items[" + strconv.Itoa(i) + "].productId"
		p, ok := products[strings.ToLower(l.ProductID)]
		switch {
		case !ok:
			errs = append(errs, &ValidationError{f, "is not a known product"})
			continue
		case p.Deleted:
			errs = append(errs, &ValidationError{f, "is no longer sold (deleted from the catalog)"})
			continue
		case currency == "":
			currency = p.Price.Currency
		case p.Price.Currency != currency:
			errs = append(errs, &ValidationError{f, fmt.Sprintf("is priced in %s, earlier lines in %s; one currency per order", p.Price.Currency, currency)})
			continue
		}
		items = append(items, Item{ProductID: p.ID, Name: p.Name, Quantity: l.Quantity, UnitPrice: p.Price})
		total += int64(l.Quantity) * p.Price.Amount
	}
	if len(errs) > 0 {
		return NewOrder{}, errs
	}
	id, err := uuid.NewV7()
	if err != nil {
		return NewOrder{}, err
	}
	o := Order{ID: id.String(), UserID: userID, Status: StatusPending, Items: items,
		Total: Money{Amount: total, Currency: currency}, ShippingAddress: addr, CreatedAt: now, UpdatedAt: now}
	sg := Saga{OrderID: o.ID, UserID: userID, Total: o.Total}
	placed := events.OrderPlaced{OrderID: o.ID, UserID: userID, Total: o.Total, PlacedAt: now}
	for _, it := range items {
		sg.Items = append(sg.Items, events.StockItem{ProductID: it.ProductID, Quantity: int64(it.Quantity)})
		placed.Items = append(placed.Items, events.OrderItem{ProductID: it.ProductID, Quantity: int64(it.Quantity), UnitPrice: it.UnitPrice})
	}
	envs, err := s.m.Start(ctx, &sg, placed, now, stepTimeout)
	if err != nil {
		return NewOrder{}, err
	}
	o.Steps = sg.Steps
	return NewOrder{Order: o, Key: key, Hash: hash, Saga: sg, Envelopes: envs}, nil
}

// Get returns one order.
func (s *Service) Get(ctx context.Context, id string) (Order, error) {
	if !isUUID(id) {
		return Order{}, ErrNotFound
	}
	return s.store.Get(ctx, id)
}

// List returns a page of orders, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) (Page, error) {
	var errs Invalid
	if q.UserID != "" && !isUUID(q.UserID) {
		errs = append(errs, &ValidationError{"userId", "must be a UUID"})
	}
	switch q.Status {
	case "", StatusPending, StatusConfirmed, StatusCancelled:
	default:
		errs = append(errs, &ValidationError{"status", "must be PENDING, CONFIRMED or CANCELLED"})
	}
	if len(errs) > 0 {
		return Page{}, errs
	}
	if q.Limit == 0 {
		q.Limit = 20
	}
	if q.Limit < 1 || q.Limit > 100 {
		return Page{}, &ValidationError{"limit", "must be from 1 to 100"}
	}
	return s.store.List(ctx, q)
}

// Sagas counts sagas per state; state "" means all of them.
func (s *Service) Sagas(ctx context.Context, state State) (SagaStats, error) {
	if state != "" && !state.Valid() {
		return SagaStats{}, Invalid{{"status", "must be one of RESERVING, CHARGING, COMMITTING, REFUNDING, RELEASING, CONFIRMED, CANCELLED"}}
	}
	return s.store.SagaStats(ctx, state)
}

// Faults returns the effective fault switches (the default step timeout when unset).
func (s *Service) Faults(ctx context.Context) (int, error) {
	f, err := s.store.Faults(ctx)
	if err != nil {
		return 0, err
	}
	if f.StepTimeoutMs != nil {
		return *f.StepTimeoutMs, nil
	}
	return int(s.m.t.StepTimeout / time.Millisecond), nil
}

// SetStepTimeout stores the stepTimeoutMs switch (1..MaxStepTimeoutMs); it applies to
// steps that start after it.
func (s *Service) SetStepTimeout(ctx context.Context, ms int) error {
	if ms < 1 || ms > MaxStepTimeoutMs {
		return Invalid{{"stepTimeoutMs", fmt.Sprintf("must be from 1 to %d", MaxStepTimeoutMs)}}
	}
	return s.store.SetFaults(ctx, Faults{StepTimeoutMs: &ms})
}

// ClearFaults removes every stored switch.
func (s *Service) ClearFaults(ctx context.Context) error {
	return s.store.SetFaults(ctx, Faults{})
}

// HandleReply applies a participant's reply under the saga's row lock, deduplicated by
// the inbox of consumer. A reply for an unknown order is dropped (logged): it cannot become
// applicable later, since the order and its saga are created together.
func (s *Service) HandleReply(ctx context.Context, consumer string, e events.Envelope) error {
	err := s.store.UpdateSaga(ctx, e.Subject, consumer, &e, func(ctx context.Context, sg *Saga, now time.Time, stepTimeout time.Duration) (Effects, error) {
		return s.m.OnReply(ctx, sg, e, now, stepTimeout)
	})
	if errors.Is(err, ErrNotFound) {
		s.log.WarnContext(ctx, "reply for an unknown order dropped", "type", e.Type, "order_id", e.Subject, "event_id", e.ID)
		return nil
	}
	return err
}

// RunTimers runs one pass of the timer worker: it claims up to limit due sagas and applies
// their timers, and returns how many it claimed.
func (s *Service) RunTimers(ctx context.Context, limit int) (int, error) {
	return s.store.ClaimDue(ctx, limit, s.m.OnTimer)
}

// TimerLoop runs RunTimers every poll until ctx ends; a full batch runs again at once.
// perSecond bounds the timer-driven work (resends, deadline compensations) to that many
// sagas a second on average, in bursts of at most a batch: when participants fall behind,
// every waiting saga's retries land in the same queues, and without a bound the retries
// grow the backlog they wait for (a 24-minute chaos run piled 455,000 release commands in
// front of inventory this way). perSecond <= 0 means no bound.
func (s *Service) TimerLoop(ctx context.Context, poll time.Duration, limit, perSecond int) {
	t := time.NewTicker(poll)
	defer t.Stop()
	budget := NewTimerBudget(perSecond, limit)
	for {
		n, err := s.RunTimers(ctx, limit)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "saga timers", "err", err)
		}
		if d := budget.Spend(time.Now(), n); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if n == limit && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TimerBudget paces the timer worker: a token bucket of perSecond tokens a second holding
// at most burst.
type TimerBudget struct{ lim *rate.Limiter }

// NewTimerBudget returns a budget of perSecond sagas a second in bursts of burst;
// perSecond <= 0 is unbounded.
func NewTimerBudget(perSecond, burst int) *TimerBudget {
	if perSecond <= 0 {
		return &TimerBudget{}
	}
	return &TimerBudget{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
}

// Spend takes n sagas handled at now from the budget and returns how long to pause before
// the next pass.
func (b *TimerBudget) Spend(now time.Time, n int) time.Duration {
	if b.lim == nil || n <= 0 {
		return 0
	}
	n = min(n, b.lim.Burst())
	return b.lim.ReserveN(now, n).DelayFrom(now)
}

// ApplyEvent applies a users or catalog event to the local copies. Types it does not
// copy are an error wrapping events.ErrInvalid (the consumer subscribes only to the ones
// it copies).
func (s *Service) ApplyEvent(ctx context.Context, consumer string, e events.Envelope) error {
	var c CopyChange
	switch e.Type {
	case events.TypeUserRegistered:
		var p events.UserRegistered
		if err := e.Decode(&p); err != nil {
			return err
		}
		c = CopyChange{Kind: CustomerRegistered, UserID: p.UserID}
	case events.TypeUserAddressChanged:
		var p events.UserAddressChanged
		if err := e.Decode(&p); err != nil {
			return err
		}
		a := p.Address
		c = CopyChange{Kind: CustomerAddressChanged, UserID: p.UserID, Address: &a}
	case events.TypeUserDeleted:
		var p events.UserDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		c = CopyChange{Kind: CustomerDeleted, UserID: p.UserID}
	case events.TypeProductCreated:
		var p events.ProductCreated
		if err := e.Decode(&p); err != nil {
			return err
		}
		c = CopyChange{Kind: ProductUpserted, Product: Product{ID: p.ProductID, Name: p.Name, Price: p.Price}}
	case events.TypeProductUpdated:
		var p events.ProductUpdated
		if err := e.Decode(&p); err != nil {
			return err
		}
		c = CopyChange{Kind: ProductUpserted, Product: Product{ID: p.ProductID, Name: p.Name, Price: p.Price}}
	case events.TypeProductDeleted:
		var p events.ProductDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		c = CopyChange{Kind: ProductDeleted, Product: Product{ID: p.ProductID, Deleted: true}}
	default:
		return fmt.Errorf("%w: orders does not copy %s", events.ErrInvalid, e.Type)
	}
	if (c.UserID != "" && !isUUID(c.UserID)) || (c.Product.ID != "" && !isUUID(c.Product.ID)) {
		return fmt.Errorf("%w: %s carries an id that is not a UUID", events.ErrInvalid, e.Type)
	}
	return s.store.ApplyCopy(ctx, consumer, e, c)
}
