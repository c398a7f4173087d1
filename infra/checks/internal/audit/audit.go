// Package audit checks the cross-store invariants of the order saga from outside, the way
// an operator would: it reads every owner through its own internal API (orders, inventory,
// payments) and the broker's monitoring endpoint, never a database. ./scripts/audit and
// ./scripts/chaos use it.
//
// Invariants (issue 11, SPEC "The order saga"):
//   - stuck: an order older than the saga deadline (plus grace) is CONFIRMED or CANCELLED;
//   - confirmed: exactly one payment, charged, equal to the order's total, not refunded;
//     exactly one reservation, committed, of exactly the order's items;
//   - cancelled: no money held (no charge, or charged and fully refunded, or declined /
//     tombstone) and no stock held (no reservation active or committed);
//   - ledger: per product, initial + restocked = available + reserved + sold; and, for the
//     products the caller owns exclusively (a chaos run's), reserved and sold equal the
//     active and committed reservations of the audited orders;
//   - ledger: every product inventory knows (GET /ledgers), not only those ordered;
//   - ledger-held: per product, reserved equals what the active reservations hold (read
//     by inventory in one statement): a reserve applied twice (pattern switch
//     inventory.dedup off with duplicates, lab 03) keeps the equation but not this;
//   - payments: every payment (GET /payments, all pages) belongs to an order that orders
//     knows, and refunds no more than it charged, in the charge's currency;
//   - outbox: no owner's oldest pending event older than a bound;
//   - dlq: no dead letter beyond a baseline unless explained (Config.Explained; letters
//     dropped with ./scripts/dlq drop are gone and count no more).
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config says where the owners are and what to check.
type Config struct {
	Orders, Inventory, Payments string // base URLs of the internal APIs
	NATSMonitor                 string // base URL of the NATS monitoring endpoint ("" skips DLQ checks)
	// StuckAfter: an order older than this must be terminal (default 2m: orders' saga
	// deadline of 30 s plus compensation retries).
	StuckAfter time.Duration
	// OutboxMaxAge bounds the oldest pending outbox event of each owner (default 60s).
	OutboxMaxAge time.Duration
	// Since limits the audit to orders created at or after it (zero: every order).
	Since time.Time
	// ExactProducts are products only the audited orders touched: their reserved and sold
	// counts must match the reservations exactly.
	ExactProducts []string
	// DLQBaseline is each DLQ stream's last sequence before the run; dead letters up to it
	// are not counted (nil: every dead letter counts).
	DLQBaseline map[string]uint64
	// Services are the base URLs of the services whose dead letters the audit lists
	// (GET /admin/dlq, shared/admin) by service name; a DLQ_<SERVICE> stream of a service
	// not named here is only counted, and its letters cannot be explained.
	Services map[string]string
	// Explained are dead letters kept on purpose, with the reason (ParseExplained).
	Explained map[LetterKey]string
	// Concurrency of the per-order reads (default 16).
	Concurrency int
	// Client is the HTTP client (default: 10 s timeout).
	Client *http.Client
}

// Violation is one broken invariant with the ids involved.
type Violation struct {
	Kind   string   `json:"kind"`
	IDs    []string `json:"ids"`
	Detail string   `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s [%s]: %s", v.Kind, strings.Join(v.IDs, " "), v.Detail)
}

// Report is what an audit found.
type Report struct {
	Orders        int            `json:"orders"`
	ByStatus      map[string]int `json:"byStatus"`
	CancelReasons map[string]int `json:"cancelReasons"`
	Pending       []string       `json:"pending"` // not terminal yet (stuck or not)
	Stuck         []string       `json:"stuck"`
	Products      int            `json:"products"` // ledgers checked: every product inventory knows
	// Moving are exact products whose ledger changed while the audit read the orders: their
	// counts cannot be compared with reservations read at other moments (a platform still
	// settling). A settled platform has none.
	Moving       []string          `json:"moving"`
	Payments     int               `json:"payments"` // payments checked: every payment
	Outbox       map[string]Outbox `json:"outbox"`
	DLQ          map[string]uint64 `json:"dlq"`          // unexplained dead letters per DLQ stream
	DLQExplained int               `json:"dlqExplained"` // dead letters named by Config.Explained
	Violations   []Violation       `json:"violations"`
	Took         string            `json:"took"`
}

// Outbox is an owner's GET /outbox answer.
type Outbox struct {
	Pending                 int64   `json:"pending"`
	OldestPendingAgeSeconds float64 `json:"oldestPendingAgeSeconds"`
}

// Money is an amount in minor units.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Item is an order line or a reserved line.
type Item struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// Order is the part of orders' order the audit reads.
type Order struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	CancelReason string    `json:"cancelReason"`
	Items        []Item    `json:"items"`
	Total        Money     `json:"total"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Payment is the part of a payment the audit reads.
type Payment struct {
	ID       string `json:"id"`
	OrderID  string `json:"orderId"`
	Amount   Money  `json:"amount"`
	Status   string `json:"status"`
	Refunded *Money `json:"refunded"`
}

// Reservation is the part of a reservation the audit reads.
type Reservation struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Items  []Item `json:"items"`
}

// Ledger is inventory's ledger of one product.
type Ledger struct {
	ProductID string `json:"productId"`
	Initial   int64  `json:"initial"`
	Restocked int64  `json:"restocked"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
	Retired   bool   `json:"retired"`
	// Held is what the product's active reservations hold (nil: an inventory that does not
	// report it).
	Held *int64 `json:"held"`
}

// Facts are the reads of one order.
type Facts struct {
	Order        Order
	Payments     []Payment
	Reservations []Reservation
}

// Run reads every owner and checks the invariants. An error means the audit could not
// read something (the platform is not up); violations are in the report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	t0 := time.Now()
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = 2 * time.Minute
	}
	if cfg.OutboxMaxAge <= 0 {
		cfg.OutboxMaxAge = time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	g := getter{hc: cfg.Client}
	rep := Report{ByStatus: map[string]int{}, CancelReasons: map[string]int{}, Outbox: map[string]Outbox{},
		DLQ: map[string]uint64{}, Pending: []string{}, Stuck: []string{}, Moving: []string{}, Violations: []Violation{}}

	// The ledgers are read before and after the orders: an exact product whose ledger
	// version moved in between was read mid-flight, and its reservations (read per order,
	// at other moments) cannot be compared with its counts.
	before, err := listAll[Ledger](ctx, g, cfg.Inventory+"/ledgers")
	if err != nil {
		return rep, err
	}
	versionBefore := make(map[string]int64, len(before))
	for _, l := range before {
		versionBefore[l.ProductID] = l.Version
	}

	// Orders first, then payments: a charge is stored before its order can be CONFIRMED,
	// so every charge of a listed order is in the later payment list. Every order is
	// listed (the payments check needs them all); Since limits the per-order checks.
	all, err := listOrders(ctx, g, cfg.Orders)
	if err != nil {
		return rep, err
	}
	known := make(map[string]bool, len(all))
	var orders []Order
	for _, o := range all {
		known[o.ID] = true
		if cfg.Since.IsZero() || !o.CreatedAt.Before(cfg.Since) {
			orders = append(orders, o)
		}
	}
	pays, err := listAll[Payment](ctx, g, cfg.Payments+"/payments")
	if err != nil {
		return rep, err
	}
	payByOrder := map[string][]Payment{}
	for _, p := range pays {
		payByOrder[p.OrderID] = append(payByOrder[p.OrderID], p)
		orderKnown := known[p.OrderID]
		if !orderKnown {
			// Placed after the order list was read? Ask for that order alone.
			st, err := g.status(ctx, cfg.Orders+"/orders/"+url.PathEscape(p.OrderID))
			if err != nil {
				return rep, err
			}
			orderKnown = st == http.StatusOK
		}
		rep.Violations = append(rep.Violations, CheckPayment(p, orderKnown)...)
	}
	rep.Payments = len(pays)

	facts := make([]Facts, len(orders))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, cfg.Concurrency)
	for i, o := range orders {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r struct{ Items []Reservation }
			err := g.get(ctx, cfg.Inventory+"/reservations?orderId="+url.QueryEscape(o.ID), &r)
			facts[i] = Facts{Order: o, Payments: payByOrder[o.ID], Reservations: r.Items}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}

	now := time.Now()
	for _, f := range facts {
		o := f.Order
		rep.Orders++
		rep.ByStatus[o.Status]++
		if o.Status == "CANCELLED" {
			rep.CancelReasons[o.CancelReason]++
		}
		if o.Status == "PENDING" {
			rep.Pending = append(rep.Pending, o.ID)
			if now.Sub(o.CreatedAt) > cfg.StuckAfter {
				rep.Stuck = append(rep.Stuck, o.ID)
			}
		}
		rep.Violations = append(rep.Violations, CheckOrder(f, now, cfg.StuckAfter)...)
	}

	// Every product's ledger, not only the ordered ones.
	ledgers, err := listAll[Ledger](ctx, g, cfg.Inventory+"/ledgers")
	if err != nil {
		return rep, err
	}
	exact := map[string]bool{}
	for _, p := range cfg.ExactProducts {
		exact[p] = true
	}
	for _, l := range ledgers {
		ex := exact[l.ProductID]
		if v, ok := versionBefore[l.ProductID]; ex && (!ok || v != l.Version) {
			ex = false
			rep.Moving = append(rep.Moving, l.ProductID)
		}
		rep.Violations = append(rep.Violations, CheckLedger(l, facts, ex)...)
		delete(exact, l.ProductID)
	}
	for _, p := range sortedKeys(exact) {
		rep.Violations = append(rep.Violations, Violation{Kind: "ledger", IDs: []string{p}, Detail: "inventory has no ledger for this product"})
	}
	rep.Products = len(ledgers)

	for name, base := range map[string]string{"orders": cfg.Orders, "inventory": cfg.Inventory, "payments": cfg.Payments} {
		var ob Outbox
		if err := g.get(ctx, base+"/outbox", &ob); err != nil {
			return rep, err
		}
		rep.Outbox[name] = ob
		if ob.OldestPendingAgeSeconds > cfg.OutboxMaxAge.Seconds() {
			rep.Violations = append(rep.Violations, Violation{Kind: "outbox", IDs: []string{name},
				Detail: fmt.Sprintf("%d events pending, the oldest %.0fs old (bound %s)", ob.Pending, ob.OldestPendingAgeSeconds, cfg.OutboxMaxAge)})
		}
	}

	if cfg.NATSMonitor != "" {
		state, err := DLQState(ctx, cfg.Client, cfg.NATSMonitor)
		if err != nil {
			return rep, err
		}
		for stream, st := range state {
			if st.Messages == 0 {
				continue
			}
			baseline := cfg.DLQBaseline[stream] // 0 without a baseline: every letter counts
			service := strings.ToLower(strings.TrimPrefix(stream, "DLQ_"))
			if base, ok := cfg.Services[service]; ok {
				letters, err := deadLetters(ctx, g, base)
				if err != nil {
					return rep, err
				}
				v, explained := CheckDLQ(service, letters, baseline, cfg.Explained)
				rep.DLQExplained += explained
				if v != nil {
					rep.DLQ[stream] = uint64(len(v.IDs) - 1)
					rep.Violations = append(rep.Violations, *v)
				}
				continue
			}
			n := min(st.Messages, st.LastSeq-min(st.LastSeq, baseline))
			if n > 0 {
				rep.DLQ[stream] = n
				rep.Violations = append(rep.Violations, Violation{Kind: "dlq", IDs: []string{stream},
					Detail: fmt.Sprintf("%d dead letters (last sequence %d); inspect, replay or drop them (./scripts/dlq)", n, st.LastSeq)})
			}
		}
	}
	sort.SliceStable(rep.Violations, func(i, j int) bool { return rep.Violations[i].Kind < rep.Violations[j].Kind })
	rep.Took = time.Since(t0).Round(time.Millisecond).String()
	return rep, nil
}

// CheckOrder checks one order against its payments and reservations.
func CheckOrder(f Facts, now time.Time, stuckAfter time.Duration) []Violation {
	o := f.Order
	var out []Violation
	bad := func(kind, detail string, ids ...string) {
		out = append(out, Violation{Kind: kind, IDs: append([]string{o.ID}, ids...), Detail: detail})
	}
	switch o.Status {
	case "PENDING":
		if now.Sub(o.CreatedAt) > stuckAfter {
			bad("stuck", fmt.Sprintf("PENDING %s after creation (bound %s)", now.Sub(o.CreatedAt).Round(time.Second), stuckAfter))
		}
	case "CONFIRMED":
		var charged []Payment
		for _, p := range f.Payments {
			if p.Status == "charged" || p.Status == "refunded" {
				charged = append(charged, p)
			}
		}
		switch {
		case len(charged) != 1:
			bad("confirmed-charge", fmt.Sprintf("%d charges, want exactly 1", len(charged)), paymentIDs(f.Payments)...)
		case charged[0].Status != "charged" || (charged[0].Refunded != nil && charged[0].Refunded.Amount != 0):
			bad("confirmed-charge", "the charge was refunded", charged[0].ID)
		case charged[0].Amount != o.Total:
			bad("confirmed-charge", fmt.Sprintf("charge %d %s, order total %d %s", charged[0].Amount.Amount,
				charged[0].Amount.Currency, o.Total.Amount, o.Total.Currency), charged[0].ID)
		}
		var committed []Reservation
		for _, r := range f.Reservations {
			if r.Status == "committed" {
				committed = append(committed, r)
			}
		}
		switch {
		case len(committed) != 1 || len(f.Reservations) != 1:
			bad("confirmed-stock", fmt.Sprintf("%d reservations, %d committed; want exactly 1, committed", len(f.Reservations), len(committed)),
				reservationIDs(f.Reservations)...)
		case !sameItems(committed[0].Items, o.Items):
			bad("confirmed-stock", fmt.Sprintf("committed %v, ordered %v", committed[0].Items, o.Items), committed[0].ID)
		}
	case "CANCELLED":
		for _, p := range f.Payments {
			switch {
			case p.Status == "charged":
				bad("cancelled-money", fmt.Sprintf("charge of %d %s not refunded", p.Amount.Amount, p.Amount.Currency), p.ID)
			case p.Status == "refunded" && (p.Refunded == nil || *p.Refunded != p.Amount):
				bad("cancelled-money", fmt.Sprintf("charge of %d refunded only %v", p.Amount.Amount, p.Refunded), p.ID)
			}
		}
		for _, r := range f.Reservations {
			if r.Status == "active" || r.Status == "committed" {
				bad("cancelled-stock", "reservation still "+r.Status, r.ID)
			}
		}
	default:
		bad("status", "unknown status "+o.Status)
	}
	return out
}

// CheckLedger checks one product's ledger; with exact, also that its reserved and sold
// counts are those of the audited orders' reservations.
func CheckLedger(l Ledger, facts []Facts, exact bool) []Violation {
	var out []Violation
	if l.Initial+l.Restocked != l.Available+l.Reserved+l.Sold {
		out = append(out, Violation{Kind: "ledger", IDs: []string{l.ProductID}, Detail: fmt.Sprintf(
			"initial %d + restocked %d != available %d + reserved %d + sold %d", l.Initial, l.Restocked, l.Available, l.Reserved, l.Sold)})
	}
	if l.Held != nil && *l.Held != l.Reserved {
		out = append(out, Violation{Kind: "ledger-held", IDs: []string{l.ProductID}, Detail: fmt.Sprintf(
			"reserved %d but active reservations hold %d: %d units held by no reservation (a reserve applied twice? "+
				"POST /stock/{id}/reconcile on inventory gives them back)", l.Reserved, *l.Held, l.Reserved-*l.Held)})
	}
	if !exact {
		return out
	}
	var reserved, sold int64
	for _, f := range facts {
		for _, r := range f.Reservations {
			for _, it := range r.Items {
				if it.ProductID != l.ProductID {
					continue
				}
				switch r.Status {
				case "active":
					reserved += it.Quantity
				case "committed":
					sold += it.Quantity
				}
			}
		}
	}
	if reserved != l.Reserved || sold != l.Sold {
		out = append(out, Violation{Kind: "ledger-reservations", IDs: []string{l.ProductID}, Detail: fmt.Sprintf(
			"ledger reserved %d sold %d; reservations active %d committed %d", l.Reserved, l.Sold, reserved, sold)})
	}
	return out
}

func sameItems(a, b []Item) bool {
	sum := func(items []Item) map[string]int64 {
		m := map[string]int64{}
		for _, it := range items {
			m[it.ProductID] += it.Quantity
		}
		return m
	}
	ma, mb := sum(a), sum(b)
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if mb[k] != v {
			return false
		}
	}
	return true
}

func paymentIDs(ps []Payment) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func reservationIDs(rs []Reservation) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func listOrders(ctx context.Context, g getter, base string) ([]Order, error) {
	var out []Order
	cursor := ""
	for {
		u := base + "/orders?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []Order
			NextCursor string
		}
		if err := g.get(ctx, u, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// listAll reads every page of an owner's paged list (?cursor=&limit=, {items, nextCursor}:
// inventory's /ledgers, payments' /payments).
func listAll[T any](ctx context.Context, g getter, base string) ([]T, error) {
	var out []T
	cursor := ""
	for {
		u := base + "?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Items      []T
			NextCursor string
		}
		if err := g.get(ctx, u, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" || len(page.Items) == 0 {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// StreamState is a stream's message count and last sequence.
type StreamState struct {
	Messages uint64 `json:"messages"`
	LastSeq  uint64 `json:"last_seq"`
}

// DLQState returns the state of every DLQ_* stream from the NATS monitoring endpoint
// (/jsz), which needs no credentials.
func DLQState(ctx context.Context, hc *http.Client, monitor string) (map[string]StreamState, error) {
	var jsz struct {
		AccountDetails []struct {
			StreamDetail []struct {
				Name  string      `json:"name"`
				State StreamState `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := (getter{hc: hc}).get(ctx, strings.TrimRight(monitor, "/")+"/jsz?streams=true", &jsz); err != nil {
		return nil, err
	}
	out := map[string]StreamState{}
	for _, a := range jsz.AccountDetails {
		for _, s := range a.StreamDetail {
			if strings.HasPrefix(s.Name, "DLQ_") {
				out[s.Name] = s.State
			}
		}
	}
	return out, nil
}

type getter struct{ hc *http.Client }

// status answers the status of GET u once it is not a 5xx (retrying like get): 200 or 404
// for an order that exists or not.
func (g getter) status(ctx context.Context, u string) (int, error) {
	err := g.get(ctx, u, &json.RawMessage{})
	var se *statusError
	if errors.As(err, &se) {
		return se.code, nil
	}
	if err != nil {
		return 0, err
	}
	return http.StatusOK, nil
}

// statusError is a 4xx answer.
type statusError struct {
	u    string
	code int
	body []byte
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s = %d %s", e.u, e.code, e.body) }

func (g getter) get(ctx context.Context, u string, out any) error {
	var last error
	for attempt := range 5 { // an owner restarting (chaos) answers again within seconds
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := g.hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			last = fmt.Errorf("GET %s = %d %s", u, resp.StatusCode, bytes.TrimSpace(b))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return &statusError{u: u, code: resp.StatusCode, body: bytes.TrimSpace(b)}
		}
		return json.Unmarshal(b, out)
	}
	return last
}
