package payments

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"polyshop/shared/events"
)

// Options configure a Service. Zero values take the defaults.
type Options struct {
	// Decide draws the decline and error faults (default RandomDecide).
	Decide Decide
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service handles the saga's payment commands and the internal API's reads and fault
// switches.
type Service struct {
	store  Store
	decide Decide
	now    func() time.Time
}

// NewService returns a Service over store.
func NewService(store Store, opts Options) *Service {
	if opts.Decide == nil {
		opts.Decide = RandomDecide
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{store: store, decide: opts.Decide, now: opts.Now}
}

// Outcome is the reply a command produced: "charged", "declined", "failed" or "refunded".
// Resent is true when it repeats a stored answer (a duplicate or late command).
type Outcome struct {
	Reply  string
	Resent bool
}

// Reply outcomes.
const (
	ReplyCharged  = "charged"
	ReplyDeclined = "declined"
	ReplyFailed   = "failed"
	ReplyRefunded = "refunded"
)

var replyTypes = map[string]string{
	ReplyCharged:  events.TypeReplyPaymentCharged,
	ReplyDeclined: events.TypeReplyPaymentDeclined,
	ReplyFailed:   events.TypeReplyPaymentFailed,
	ReplyRefunded: events.TypeReplyPaymentRefunded,
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

func validUUID(field, id string) error {
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u.String() != id {
		return &FieldError{Field: field, Reason: "must be a UUID in canonical lower-case form"}
	}
	return nil
}

// Charge handles a charge command (data events.ChargePayment), per SAGA.md's participant
// table:
//   - the order already has a payment: its stored reply is sent again as a new envelope
//     (charged for a charged or refunded payment, declined for a declined one), and a
//     tombstone (the refund came first) answers declined with ReasonRefunded;
//   - otherwise the error fault may answer failed, storing nothing; else the decline fault
//     may decline (stored, final); else the order is charged (stored).
//
// The row, the reply and the domain event commit together. An invalid command returns an
// error matching ErrInvalid (permanent); a store error is returned for redelivery.
func (s *Service) Charge(ctx context.Context, e events.Envelope) (Outcome, error) {
	var cmd events.ChargePayment
	if err := e.Decode(&cmd); err != nil {
		return Outcome{}, err
	}
	if err := validateCharge(cmd); err != nil {
		return Outcome{}, fmt.Errorf("charge command %s: %w", e.ID, err)
	}
	f, err := s.prepare(ctx)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	err = s.store.Update(ctx, cmd.OrderID, func(cur *Payment) (*Payment, []events.Envelope, error) {
		now := s.now().UTC().Truncate(time.Microsecond)
		r := replyTo{orderID: cmd.OrderID, userID: cmd.UserID, attempt: cmd.Attempt, at: now}
		if cur != nil {
			next := *cur
			next.Replies++
			r.seq = next.Replies
			var env events.Envelope
			var err error
			switch cur.Status {
			case StatusTombstone:
				out = Outcome{Reply: ReplyDeclined, Resent: true}
				env, err = r.build(ctx, ReplyDeclined, &next, func(p *events.PaymentReply) { p.Reason = ReasonRefunded })
			case StatusDeclined:
				out = Outcome{Reply: ReplyDeclined, Resent: true}
				env, err = r.build(ctx, ReplyDeclined, &next, func(p *events.PaymentReply) { p.Reason = cur.Reason })
			default: // charged, or charged then refunded: the charge's stored reply
				out = Outcome{Reply: ReplyCharged, Resent: true}
				env, err = r.build(ctx, ReplyCharged, &next, func(p *events.PaymentReply) { p.Amount = &next.Amount })
			}
			if err != nil {
				return nil, nil, err
			}
			next.UpdatedAt = now
			return &next, []events.Envelope{env}, nil
		}

		if s.decide(f.ErrorRate) {
			// A transient failure: nothing stored, so the next attempt is tried afresh.
			out = Outcome{Reply: ReplyFailed}
			r.seq = 1
			env, err := r.build(ctx, ReplyFailed, nil, func(p *events.PaymentReply) {
				p.Error = "payment provider unavailable (injected fault)"
			})
			if err != nil {
				return nil, nil, err
			}
			return nil, []events.Envelope{env}, nil
		}

		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, fmt.Errorf("new payment id: %w", err)
		}
		p := &Payment{ID: id.String(), OrderID: cmd.OrderID, UserID: cmd.UserID,
			Amount:  events.Money{Amount: cmd.Amount, Currency: cmd.Currency},
			Replies: 1, Version: 1, CreatedAt: now, UpdatedAt: now}
		r.seq = 1
		var evType string
		var data any
		if s.decide(f.DeclineRate) {
			p.Status, p.Reason = StatusDeclined, ReasonCardDeclined
			out = Outcome{Reply: ReplyDeclined}
			evType = events.TypePaymentDeclined
			data = events.PaymentDeclined{PaymentID: p.ID, OrderID: p.OrderID, UserID: p.UserID,
				Amount: p.Amount, Reason: p.Reason, DeclinedAt: now}
		} else {
			p.Status = StatusCharged
			out = Outcome{Reply: ReplyCharged}
			evType = events.TypePaymentCharged
			data = events.PaymentCharged{PaymentID: p.ID, OrderID: p.OrderID, UserID: p.UserID,
				Amount: p.Amount, ChargedAt: now}
		}
		reply, err := r.build(ctx, out.Reply, p, func(rp *events.PaymentReply) {
			if p.Status == StatusCharged {
				rp.Amount = &p.Amount
			} else {
				rp.Reason = p.Reason
			}
		})
		if err != nil {
			return nil, nil, err
		}
		ev, err := events.New(ctx, evType, p.ID, p.Version, data)
		if err != nil {
			return nil, nil, err
		}
		return p, []events.Envelope{reply, ev}, nil
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("charge order %s: %w", cmd.OrderID, err)
	}
	return out, nil
}

// Refund handles a refund command (data events.RefundPayment), the charge's compensation:
//   - a charged payment is refunded in full (never more than the charge) and refunded is
//     replied with the amount;
//   - an order without a payment gets a tombstone, so a late charge is declined, and
//     refunded is replied with amount 0;
//   - a refunded payment or a tombstone re-sends refunded (with the stored amount), a
//     declined payment answers refunded with amount 0; none of these change anything.
func (s *Service) Refund(ctx context.Context, e events.Envelope) (Outcome, error) {
	var cmd events.RefundPayment
	if err := e.Decode(&cmd); err != nil {
		return Outcome{}, err
	}
	if err := validateRefund(cmd); err != nil {
		return Outcome{}, fmt.Errorf("refund command %s: %w", e.ID, err)
	}
	if _, err := s.prepare(ctx); err != nil {
		return Outcome{}, err
	}
	out := Outcome{Reply: ReplyRefunded}
	err := s.store.Update(ctx, cmd.OrderID, func(cur *Payment) (*Payment, []events.Envelope, error) {
		now := s.now().UTC().Truncate(time.Microsecond)
		r := replyTo{orderID: cmd.OrderID, userID: cmd.UserID, attempt: cmd.Attempt, at: now}
		if cur == nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, nil, fmt.Errorf("new payment id: %w", err)
			}
			p := &Payment{ID: id.String(), OrderID: cmd.OrderID, UserID: cmd.UserID, Status: StatusTombstone,
				Reason: cmd.Reason, Replies: 1, Version: 1, CreatedAt: now, UpdatedAt: now}
			out.Resent = false
			r.seq = 1
			env, err := r.build(ctx, ReplyRefunded, p, func(rp *events.PaymentReply) {
				rp.Amount = &events.Money{}
			})
			if err != nil {
				return nil, nil, err
			}
			return p, []events.Envelope{env}, nil
		}
		next := *cur
		next.Replies++
		next.UpdatedAt = now
		r.seq = next.Replies
		var evs []events.Envelope
		refunded := events.Money{Currency: cur.Amount.Currency}
		switch cur.Status {
		case StatusCharged:
			refunded = cur.Amount
			next.Status, next.Refunded, next.Reason = StatusRefunded, &refunded, cmd.Reason
			next.Version++
			ev, err := events.New(ctx, events.TypePaymentRefunded, next.ID, next.Version, events.PaymentRefunded{
				PaymentID: next.ID, OrderID: next.OrderID, UserID: next.UserID, Amount: refunded,
				Reason: cmd.Reason, RefundedAt: now})
			if err != nil {
				return nil, nil, err
			}
			evs = append(evs, ev)
		case StatusRefunded:
			out.Resent = true
			refunded = *cur.Refunded
		default: // tombstone or declined: no money was taken
			out.Resent = true
		}
		env, err := r.build(ctx, ReplyRefunded, &next, func(rp *events.PaymentReply) { rp.Amount = &refunded })
		if err != nil {
			return nil, nil, err
		}
		return &next, append([]events.Envelope{env}, evs...), nil
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("refund order %s: %w", cmd.OrderID, err)
	}
	return out, nil
}

// prepare reads the fault switches and sleeps the injected latency.
func (s *Service) prepare(ctx context.Context) (Faults, error) {
	f, err := s.store.Faults(ctx)
	if err != nil {
		return Faults{}, err
	}
	if d := f.Latency(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return Faults{}, ctx.Err()
		case <-t.C:
		}
	}
	return f, nil
}

type replyTo struct {
	orderID, userID string
	attempt         int
	seq             int64
	at              time.Time
}

// build makes a reply envelope (subject order id, sequence the order's reply count).
func (r replyTo) build(ctx context.Context, outcome string, p *Payment, fill func(*events.PaymentReply)) (events.Envelope, error) {
	data := events.PaymentReply{OrderID: r.orderID, UserID: r.userID, Attempt: r.attempt, At: r.at}
	if p != nil {
		data.PaymentID = p.ID
	}
	fill(&data)
	return events.New(ctx, replyTypes[outcome], r.orderID, r.seq, data)
}

func validateCharge(c events.ChargePayment) error {
	if err := validUUID("orderId", c.OrderID); err != nil {
		return err
	}
	if err := validUUID("userId", c.UserID); err != nil {
		return err
	}
	if c.Attempt < 0 {
		return &FieldError{Field: "attempt", Reason: "must not be negative"}
	}
	if c.Amount <= 0 {
		return &FieldError{Field: "amount", Reason: "must be positive"}
	}
	if !currencyPattern.MatchString(c.Currency) {
		return &FieldError{Field: "currency", Reason: "must be an ISO 4217 code (three capital letters)"}
	}
	return nil
}

func validateRefund(c events.RefundPayment) error {
	if err := validUUID("orderId", c.OrderID); err != nil {
		return err
	}
	if err := validUUID("userId", c.UserID); err != nil {
		return err
	}
	if c.Attempt < 0 {
		return &FieldError{Field: "attempt", Reason: "must not be negative"}
	}
	return nil
}

// ByOrder returns the order's payments (zero or one). It answers ErrDown while the down
// switch is on, and a *FieldError for an orderId that is not a UUID.
func (s *Service) ByOrder(ctx context.Context, orderID string) ([]Payment, error) {
	if err := validUUID("orderId", orderID); err != nil {
		return nil, err
	}
	f, err := s.store.Faults(ctx)
	if err != nil {
		return nil, err
	}
	if f.Down {
		return nil, ErrDown
	}
	return s.store.ByOrder(ctx, orderID)
}

// Faults returns the stored fault switches.
func (s *Service) Faults(ctx context.Context) (Faults, error) { return s.store.Faults(ctx) }

// PatchFaults validates p and changes the fields it names; an empty patch changes nothing.
func (s *Service) PatchFaults(ctx context.Context, p FaultsPatch) (Faults, error) {
	if err := p.Validate(); err != nil {
		return Faults{}, err
	}
	return s.store.UpdateFaults(ctx, func(f *Faults) error {
		p.Apply(f)
		return nil
	})
}

// ClearFaults switches every fault off.
func (s *Service) ClearFaults(ctx context.Context) error { return s.store.SetFaults(ctx, Faults{}) }
