package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// DefaultTTL is how long a reservation is held before the sweeper gives it back: far
// longer than the saga's deadline, so only orphans (an orchestrator that never came back)
// ever expire.
const DefaultTTL = 15 * time.Minute

// CatalogConsumer is the inbox name of the catalog events.
const CatalogConsumer = "inventory-catalog"

// CommandsConsumer is the inbox name of orders' commands (reserve, release, commit), from
// both of inventory's command consumers: event ids are unique across them.
const CommandsConsumer = "inventory-commands"

// Options configure a Service; zero values take the defaults.
type Options struct {
	// TTL of a reservation (default DefaultTTL).
	TTL time.Duration
	// Now is the clock (default time.Now); tests drive expiry with it.
	Now func() time.Time
	// Sleep waits d or until ctx ends (default a timer); tests record the latency fault.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives warnings about commands that do not fit the state.
	Log *slog.Logger
	// Dedup reports whether the reserve's natural-key idempotency is on: the lab pattern
	// switch inventory.dedup (nil: always on; see dedup.go).
	Dedup func() bool
}

// Service is the inventory's use cases. It is safe for concurrent use.
type Service struct {
	store  Store
	ttl    time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	log    *slog.Logger
	faults atomic.Pointer[Faults]
	// dedupOn is Options.Dedup.
	dedupOn func() bool
}

// NewService returns a Service over store.
func NewService(store Store, o Options) *Service {
	s := &Service{store: store, ttl: o.TTL, now: o.Now, sleep: o.Sleep, log: o.Log, dedupOn: o.Dedup}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleep
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.faults.Store(&Faults{})
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TTL returns the reservation lifetime.
func (s *Service) TTL() time.Duration { return s.ttl }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ---- reads and restock ----

// Stock returns a product's stock; ErrNotFound for an unknown or retired product.
func (s *Service) Stock(ctx context.Context, productID string) (Stock, error) {
	st, err := s.store.Stock(ctx, productID)
	if err != nil {
		return Stock{}, err
	}
	if st.Retired {
		return Stock{}, ErrNotFound
	}
	return st, nil
}

// MaxIDs is how many ids one Stocks call accepts.
const MaxIDs = 100

// Stocks returns the stock of the known, not retired products among ids, in the order
// asked.
func (s *Service) Stocks(ctx context.Context, ids []string) ([]Stock, error) {
	if len(ids) == 0 {
		return nil, &ValidationError{Field: "ids", Reason: "must name at least one product id"}
	}
	if len(ids) > MaxIDs {
		return nil, &ValidationError{Field: "ids", Reason: fmt.Sprintf("must name at most %d product ids", MaxIDs)}
	}
	for _, id := range ids {
		if id == "" {
			return nil, &ValidationError{Field: "ids", Reason: "must not contain an empty id"}
		}
	}
	rows, err := s.store.Stocks(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Stock, len(rows))
	for _, r := range rows {
		byID[r.ProductID] = r
	}
	out := make([]Stock, 0, len(rows))
	seen := map[string]bool{}
	for _, id := range ids {
		if st, ok := byID[id]; ok && !st.Retired && !seen[id] {
			seen[id] = true
			out = append(out, st)
		}
	}
	return out, nil
}

// Ledger returns a product's ledger, retired products included.
func (s *Service) Ledger(ctx context.Context, productID string) (Stock, error) {
	return s.store.LedgerOf(ctx, productID)
}

// Restock sets a product's available units to available, guarded by version: the
// difference to the current availability is added to Restocked (negative for a
// correction), so the ledger still balances. Reserved units are not touched.
func (s *Service) Restock(ctx context.Context, productID string, available, version int64) (Stock, error) {
	if available < 0 {
		return Stock{}, &ValidationError{Field: "available", Reason: "must be 0 or more"}
	}
	if version < 1 {
		return Stock{}, &ValidationError{Field: "version", Reason: "must be 1 or more"}
	}
	return s.store.Product(ctx, productID, nil, func(cur *Stock) (*Stock, []events.Envelope, error) {
		if cur == nil || cur.Retired {
			return nil, nil, ErrNotFound
		}
		if cur.Version != version {
			return nil, nil, ErrStaleVersion
		}
		next := *cur
		next.Restocked += available - cur.Available
		next.Available = available
		ev, err := s.touch(ctx, &next)
		if err != nil {
			return nil, nil, err
		}
		return &next, []events.Envelope{ev}, nil
	})
}

// touch bumps a changed stock row's version and returns its stock_changed event.
func (s *Service) touch(ctx context.Context, st *Stock) (events.Envelope, error) {
	st.Version++
	st.UpdatedAt = s.clock()
	return events.New(ctx, events.TypeStockChanged, st.ProductID, st.Version,
		events.StockChanged{ProductID: st.ProductID, Available: st.Offered(), Version: st.Version})
}

// ---- catalog events ----

// ApplyCatalog applies a catalog event exactly once (inbox): product_created creates the
// stock row with the initial stock, product_deleted retires it (a delete that comes first
// leaves a retired row, so the late create changes nothing).
func (s *Service) ApplyCatalog(ctx context.Context, e events.Envelope) error {
	claim := &InboxClaim{Consumer: CatalogConsumer, Event: e}
	switch e.Type {
	case events.TypeProductCreated:
		var p events.ProductCreated
		if err := e.Decode(&p); err != nil {
			return err
		}
		if p.ProductID == "" || p.InitialStock < 0 {
			return fmt.Errorf("%w: product_created needs a productId and initialStock >= 0", events.ErrInvalid)
		}
		_, err := s.store.Product(ctx, p.ProductID, claim, func(cur *Stock) (*Stock, []events.Envelope, error) {
			if cur != nil {
				return nil, nil, nil // already known (or deleted first): nothing to do
			}
			now := s.clock()
			next := Stock{ProductID: p.ProductID, Initial: p.InitialStock, Available: p.InitialStock, CreatedAt: now}
			ev, err := s.touch(ctx, &next)
			return &next, []events.Envelope{ev}, err
		})
		return err
	case events.TypeProductDeleted:
		var p events.ProductDeleted
		if err := e.Decode(&p); err != nil {
			return err
		}
		if p.ProductID == "" {
			return fmt.Errorf("%w: product_deleted needs a productId", events.ErrInvalid)
		}
		_, err := s.store.Product(ctx, p.ProductID, claim, func(cur *Stock) (*Stock, []events.Envelope, error) {
			if cur != nil && cur.Retired {
				return nil, nil, nil
			}
			next := Stock{ProductID: p.ProductID, CreatedAt: s.clock()}
			if cur != nil {
				next = *cur
			}
			next.Retired = true
			ev, err := s.touch(ctx, &next)
			return &next, []events.Envelope{ev}, err
		})
		return err
	}
	return fmt.Errorf("%w: %s", ErrUnhandledType, e.Type)
}

// ---- saga commands ----

// HandleCommand handles one saga command (reserve, release, commit) after the latency
// fault. It is idempotent per (order, verb): a repeated command changes nothing and gets
// the stored reply published again, as a new envelope. Malformed commands are
// events.ErrInvalid (permanent).
func (s *Service) HandleCommand(ctx context.Context, e events.Envelope) error {
	if d := s.Faults().LatencyMs; d > 0 {
		if err := s.sleep(ctx, time.Duration(d)*time.Millisecond); err != nil {
			return err
		}
	}
	// A delivery of a command this inventory has already handled (the same event id: a
	// redelivery after a crash, a duplicate) changes nothing and sends nothing: its reply is
	// already in the outbox, written with the first handling. A resend by orders is a new
	// event id and gets the stored reply again (natural key per order and verb). With the
	// lab switch inventory.dedup off, both checks are skipped for a reserve (lab 03).
	var claim *InboxClaim
	if s.dedup() {
		claim = &InboxClaim{Consumer: CommandsConsumer, Event: e}
	}
	switch e.Type {
	case events.TypeCmdReserveStock:
		var c events.ReserveStock
		if err := e.Decode(&c); err != nil {
			return err
		}
		return s.reserve(ctx, c, claim)
	case events.TypeCmdReleaseStock:
		var c events.ReleaseStock
		if err := e.Decode(&c); err != nil {
			return err
		}
		return s.release(ctx, c, claim)
	case events.TypeCmdCommitStock:
		var c events.CommitStock
		if err := e.Decode(&c); err != nil {
			return err
		}
		return s.commit(ctx, c, claim)
	}
	return fmt.Errorf("%w: %s", ErrUnhandledType, e.Type)
}

func checkOrder(orderID, userID string) error {
	if _, err := uuid.Parse(orderID); err != nil || len(orderID) != 36 {
		return fmt.Errorf("%w: orderId %q is not a UUID", events.ErrInvalid, orderID)
	}
	if userID == "" {
		return fmt.Errorf("%w: userId is missing", events.ErrInvalid)
	}
	return nil
}

// normalize merges lines of the same product and sorts them by product id.
func normalize(items []events.StockItem) ([]events.StockItem, error) {
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: reserve needs at least one item", events.ErrInvalid)
	}
	sum := map[string]int64{}
	for i, it := range items {
		if it.ProductID == "" || it.Quantity < 1 {
			return nil, fmt.Errorf("%w: items[%d] needs a productId and a quantity >= 1", events.ErrInvalid, i)
		}
		sum[it.ProductID] += it.Quantity
	}
	out := make([]events.StockItem, 0, len(sum))
	for id, q := range sum {
		out = append(out, events.StockItem{ProductID: id, Quantity: q})
	}
	slices.SortFunc(out, func(a, b events.StockItem) int { return strings.Compare(a.ProductID, b.ProductID) })
	return out, nil
}

func productIDs(items []events.StockItem) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	return ids
}

// turn collects what one command writes.
type turn struct {
	s      *Service
	ctx    context.Context
	r      Reservation
	stocks []Stock
	evs    []events.Envelope
	now    time.Time
}

func (t *turn) event(typ string, data any) error {
	t.r.Version++
	ev, err := events.New(t.ctx, typ, t.r.OrderID, t.r.Version, data)
	if err != nil {
		return err
	}
	t.evs = append(t.evs, ev)
	return nil
}

// reply adds a reply to the outbox and returns it for storing.
func (t *turn) reply(typ string, data events.InventoryReply) (*StoredReply, error) {
	t.r.Replies++
	ev, err := events.New(t.ctx, typ, t.r.OrderID, t.r.Replies, data)
	if err != nil {
		return nil, err
	}
	t.evs = append(t.evs, ev)
	return &StoredReply{Type: typ, Data: data}, nil
}

// resend publishes a stored reply again as a new envelope, answering attempt.
func (t *turn) resend(stored *StoredReply, attempt int) error {
	d := stored.Data
	d.Attempt = attempt
	_, err := t.reply(stored.Type, d)
	return err
}

func (t *turn) changeStock(st Stock) error {
	ev, err := t.s.touch(t.ctx, &st)
	if err != nil {
		return err
	}
	t.stocks = append(t.stocks, st)
	t.evs = append(t.evs, ev)
	return nil
}

func (t *turn) save(tx OrderTx) error {
	t.r.UpdatedAt = t.now
	return tx.Save(t.ctx, t.r, t.stocks, t.evs)
}

func (s *Service) newTurn(ctx context.Context, tx OrderTx) *turn {
	return &turn{s: s, ctx: ctx, r: tx.Reservation(), now: s.clock()}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Reserve reserves every item of the order or none.
func (s *Service) Reserve(ctx context.Context, c events.ReserveStock) error {
	return s.reserve(ctx, c, nil)
}

func (s *Service) reserve(ctx context.Context, c events.ReserveStock, claim *InboxClaim) error {
	if err := checkOrder(c.OrderID, c.UserID); err != nil {
		return err
	}
	items, err := normalize(c.Items)
	if err != nil {
		return err
	}
	return s.store.Order(ctx, c.OrderID, newID(), claim, func(ctx context.Context, tx OrderTx) error {
		t := s.newTurn(ctx, tx)
		if t.r.UserID == "" {
			t.r.UserID = c.UserID
		}
		if t.r.Reserve != nil {
			if !s.dedup() && t.r.Status == StatusActive {
				// Lab 03: no natural-key check, the duplicate holds the stock again.
				if err := t.reserveAgain(tx, c.Attempt); err != nil {
					return err
				}
				return t.save(tx)
			}
			if err := t.resend(t.r.Reserve, c.Attempt); err != nil {
				return err
			}
			return t.save(tx)
		}
		base := events.InventoryReply{OrderID: c.OrderID, UserID: c.UserID, Attempt: c.Attempt, At: t.now}
		reject := func(reason string, short []events.StockShortage) error {
			d := base
			d.Reason, d.Shortages = reason, short
			stored, err := t.reply(events.TypeReplyStockRejected, d)
			if err != nil {
				return err
			}
			t.r.Reserve = stored
			if t.r.Status == StatusNone {
				t.r.Status = StatusRejected
			}
			if short == nil {
				short = []events.StockShortage{}
			}
			if err := t.event(events.TypeStockReservationFailed, events.StockReservationFailed{
				OrderID: c.OrderID, UserID: c.UserID, Reason: reason, Shortages: short, FailedAt: t.now}); err != nil {
				return err
			}
			return t.save(tx)
		}
		if t.r.Status == StatusTombstone {
			return reject(events.RejectReleased, nil)
		}
		stocks, err := tx.LockStock(ctx, productIDs(items))
		if err != nil {
			return err
		}
		var unknown, short []events.StockShortage
		for _, it := range items {
			st, ok := stocks[it.ProductID]
			switch {
			case !ok || st.Retired:
				unknown = append(unknown, events.StockShortage{ProductID: it.ProductID, Requested: it.Quantity})
			case st.Available < it.Quantity:
				short = append(short, events.StockShortage{ProductID: it.ProductID, Requested: it.Quantity, Available: st.Available})
			}
		}
		if unknown != nil {
			return reject(events.RejectUnknownProduct, unknown)
		}
		if short != nil {
			return reject(events.RejectOutOfStock, short)
		}
		for _, it := range items {
			st := stocks[it.ProductID]
			st.Available -= it.Quantity
			st.Reserved += it.Quantity
			if err := t.changeStock(st); err != nil {
				return err
			}
		}
		exp := t.now.Add(s.ttl)
		t.r.Status, t.r.Items, t.r.ExpiresAt = StatusActive, items, &exp
		d := base
		d.ReservationID, d.Items, d.ExpiresAt = t.r.ID, items, &exp
		if t.r.Reserve, err = t.reply(events.TypeReplyStockReserved, d); err != nil {
			return err
		}
		if err := t.event(events.TypeStockReserved, events.StockReserved{OrderID: c.OrderID, UserID: c.UserID,
			ReservationID: t.r.ID, Items: items, ReservedAt: t.now, ExpiresAt: exp}); err != nil {
			return err
		}
		return t.save(tx)
	})
}

// giveBack returns the reservation's items to stock (release or expiry).
func (t *turn) giveBack(tx OrderTx) error {
	stocks, err := tx.LockStock(t.ctx, productIDs(t.r.Items))
	if err != nil {
		return err
	}
	for _, it := range t.r.Items {
		st, ok := stocks[it.ProductID]
		if !ok {
			return fmt.Errorf("give back order %s: stock row %s is missing", t.r.OrderID, it.ProductID)
		}
		st.Available += it.Quantity
		st.Reserved -= it.Quantity
		st.Released += it.Quantity
		if err := t.changeStock(st); err != nil {
			return err
		}
	}
	return nil
}

// Release is the compensation: nothing stays held for the order afterwards. A release
// before any reserve leaves a tombstone, so the late reserve is refused.
func (s *Service) Release(ctx context.Context, c events.ReleaseStock) error {
	return s.release(ctx, c, nil)
}

func (s *Service) release(ctx context.Context, c events.ReleaseStock, claim *InboxClaim) error {
	if err := checkOrder(c.OrderID, c.UserID); err != nil {
		return err
	}
	return s.store.Order(ctx, c.OrderID, newID(), claim, func(ctx context.Context, tx OrderTx) error {
		t := s.newTurn(ctx, tx)
		if t.r.UserID == "" {
			t.r.UserID = c.UserID
		}
		if t.r.Release != nil {
			if err := t.resend(t.r.Release, c.Attempt); err != nil {
				return err
			}
			return t.save(tx)
		}
		switch t.r.Status {
		case StatusNone:
			t.r.Status = StatusTombstone
		case StatusActive:
			if err := t.giveBack(tx); err != nil {
				return err
			}
			t.r.Status = StatusReleased
			if err := t.event(events.TypeStockReleased, events.StockReleased{OrderID: c.OrderID, UserID: t.r.UserID,
				ReservationID: t.r.ID, Items: t.r.Items, Reason: events.ReleaseOrderCancelled, ReleasedAt: t.now}); err != nil {
				return err
			}
		case StatusExpired:
			t.r.Status = StatusReleased // the sweeper already gave the stock back
		case StatusCommitted:
			// Not in the saga's table: a sale is final. Answer so orders can move on.
			s.log.WarnContext(ctx, "release of a committed order; the sale stands", "order_id", c.OrderID)
		}
		d := events.InventoryReply{OrderID: c.OrderID, UserID: c.UserID, Attempt: c.Attempt, At: t.now}
		if t.r.Status == StatusReleased {
			d.ReservationID = t.r.ID
		}
		var err error
		if t.r.Release, err = t.reply(events.TypeReplyStockReleased, d); err != nil {
			return err
		}
		return t.save(tx)
	})
}

// ReasonNotReserved is the commit_failed reason when the order has no reservation to
// commit (never reserved, or its reserve was rejected).
const ReasonNotReserved = "not_reserved"

// Commit turns the reservation into a sale. An expired reservation is re-taken when every
// item is available; released or tombstoned orders are never re-taken.
func (s *Service) Commit(ctx context.Context, c events.CommitStock) error {
	return s.commit(ctx, c, nil)
}

func (s *Service) commit(ctx context.Context, c events.CommitStock, claim *InboxClaim) error {
	if err := checkOrder(c.OrderID, c.UserID); err != nil {
		return err
	}
	return s.store.Order(ctx, c.OrderID, newID(), claim, func(ctx context.Context, tx OrderTx) error {
		t := s.newTurn(ctx, tx)
		if t.r.UserID == "" {
			t.r.UserID = c.UserID
		}
		if t.r.Commit != nil {
			if err := t.resend(t.r.Commit, c.Attempt); err != nil {
				return err
			}
			return t.save(tx)
		}
		d := events.InventoryReply{OrderID: c.OrderID, UserID: c.UserID, Attempt: c.Attempt, At: t.now}
		fail := func(reason string, short []events.StockShortage) error {
			d.Reason, d.Shortages = reason, short
			var err error
			if t.r.Commit, err = t.reply(events.TypeReplyStockCommitFailed, d); err != nil {
				return err
			}
			return t.save(tx)
		}
		switch t.r.Status {
		case StatusActive:
			stocks, err := tx.LockStock(ctx, productIDs(t.r.Items))
			if err != nil {
				return err
			}
			for _, it := range t.r.Items {
				st := stocks[it.ProductID]
				st.Reserved -= it.Quantity
				st.Sold += it.Quantity
				if err := t.changeStock(st); err != nil {
					return err
				}
			}
		case StatusExpired:
			stocks, err := tx.LockStock(ctx, productIDs(t.r.Items))
			if err != nil {
				return err
			}
			var short []events.StockShortage
			for _, it := range t.r.Items {
				st, ok := stocks[it.ProductID]
				if !ok || st.Retired || st.Available < it.Quantity {
					short = append(short, events.StockShortage{ProductID: it.ProductID, Requested: it.Quantity, Available: st.Offered()})
				}
			}
			if short != nil {
				return fail(events.RejectExpired, short)
			}
			for _, it := range t.r.Items {
				st := stocks[it.ProductID]
				st.Available -= it.Quantity
				st.Sold += it.Quantity
				if err := t.changeStock(st); err != nil {
					return err
				}
			}
		case StatusReleased, StatusTombstone:
			return fail(events.RejectReleased, nil)
		default: // none, rejected
			return fail(ReasonNotReserved, nil)
		}
		t.r.Status = StatusCommitted
		d.ReservationID, d.Items = t.r.ID, t.r.Items
		var err error
		if t.r.Commit, err = t.reply(events.TypeReplyStockCommitted, d); err != nil {
			return err
		}
		if err := t.event(events.TypeStockCommitted, events.StockCommitted{OrderID: c.OrderID, UserID: t.r.UserID,
			ReservationID: t.r.ID, Items: t.r.Items, CommittedAt: t.now}); err != nil {
			return err
		}
		return t.save(tx)
	})
}

// Sweep expires every active reservation whose expiry has passed by the service clock,
// one per transaction under its row lock, giving its stock back exactly once. It returns
// how many it expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n := 0
	for {
		found, err := s.store.ExpireOne(ctx, s.clock(), func(ctx context.Context, tx OrderTx) error {
			t := s.newTurn(ctx, tx)
			if t.r.Status != StatusActive {
				return nil
			}
			if err := t.giveBack(tx); err != nil {
				return err
			}
			t.r.Status = StatusExpired
			if err := t.event(events.TypeStockReleased, events.StockReleased{OrderID: t.r.OrderID, UserID: t.r.UserID,
				ReservationID: t.r.ID, Items: t.r.Items, Reason: events.ReleaseExpired, ReleasedAt: t.now}); err != nil {
				return err
			}
			return t.save(tx)
		})
		if err != nil {
			return n, fmt.Errorf("sweep: %w", err)
		}
		if !found {
			return n, nil
		}
		n++
	}
}

// RunSweeper sweeps every interval until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.ErrorContext(ctx, "sweep failed", "expired", n, "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "reservations expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reservations returns the order's reservation (a list of zero or one).
func (s *Service) Reservations(ctx context.Context, orderID string) ([]Reservation, error) {
	if _, err := uuid.Parse(orderID); err != nil || len(orderID) != 36 {
		return nil, &ValidationError{Field: "orderId", Reason: "must be a UUID"}
	}
	return s.store.Reservations(ctx, orderID)
}

// ---- faults ----

// Faults returns the switches as last read from the store (RefreshFaults) or set.
func (s *Service) Faults() Faults { return *s.faults.Load() }

// RefreshFaults reads the stored switches, so every instance follows a change made
// through any of them.
func (s *Service) RefreshFaults(ctx context.Context) (Faults, error) {
	f, err := s.store.Faults(ctx)
	if err != nil {
		return s.Faults(), err
	}
	s.faults.Store(&f)
	return f, nil
}

// SetFaults changes the fields p names and returns the new switches.
func (s *Service) SetFaults(ctx context.Context, p FaultsPatch) (Faults, error) {
	if p.LatencyMs != nil && (*p.LatencyMs < 0 || *p.LatencyMs > MaxLatencyMs) {
		return Faults{}, &ValidationError{Field: "latencyMs", Reason: fmt.Sprintf("must be between 0 and %d", MaxLatencyMs)}
	}
	f, err := s.store.SetFaults(ctx, p)
	if err != nil {
		return Faults{}, err
	}
	s.faults.Store(&f)
	return f, nil
}

// ClearFaults turns every switch off.
func (s *Service) ClearFaults(ctx context.Context) (Faults, error) {
	zero, off := 0, false
	return s.SetFaults(ctx, FaultsPatch{LatencyMs: &zero, Down: &off})
}
