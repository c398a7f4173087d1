package orders

import (
	"context"
	"fmt"
	"time"

	"polyshop/shared/events"
	"polyshop/shared/obs"
)

// Saga is one order's saga row, with what its commands need from the order.
type Saga struct {
	OrderID string
	UserID  string
	State   State
	// Version is the sequence of the commands and events the saga writes; +1 per change.
	Version int64
	// Reason is the cancel reason once the saga compensates or is cancelled.
	Reason string
	// Attempt is the attempt number of the current step's last command.
	Attempt int
	// LastFailed is true when the last payments answer in CHARGING was `failed`.
	LastFailed bool
	LastError  string
	// NextAttemptAt is when the current command is sent again; nil in an end state.
	NextAttemptAt *time.Time
	// StepDeadlineAt is when RESERVING or CHARGING gives up; nil in other states.
	StepDeadlineAt *time.Time
	// SagaDeadlineAt is the whole saga's deadline: no charge is ever sent after it.
	SagaDeadlineAt time.Time
	// StateSince is when the saga entered State.
	StateSince    time.Time
	CorrelationID string
	Steps         []Step

	// From the order (read-only for transitions, except PaymentID).
	OrderStatus Status
	Items       []events.StockItem
	Total       Money
	PaymentID   string
}

// Effects is what a transition changed and must be written with it.
type Effects struct {
	// Changed is false when the event or timer did not fit the state: nothing is written.
	Changed bool
	// Envelopes are the commands and events to add to the outbox, in order.
	Envelopes []events.Envelope
	// Final is set when the order's public status changes (CONFIRMED or CANCELLED).
	Final Status
}

// Timing is the saga's clock configuration.
type Timing struct {
	// StepTimeout bounds RESERVING and CHARGING (default 5s); the faults table's
	// stepTimeoutMs overrides it when set.
	StepTimeout time.Duration
	// SagaTimeout bounds the whole saga's forward path (default 30s): no charge after it.
	SagaTimeout time.Duration
	// RetryInterval is the first resend delay of a command (default 2s: one resend within
	// the 5 s step deadline); it doubles per attempt up to MaxBackoff.
	RetryInterval time.Duration
	// SettleRetry is the first resend delay of commits and compensations (default 30s, the
	// participants' ack wait); it doubles per attempt up to MaxBackoff. They have no
	// deadline and wait for a reply however long it takes, so a resend before the
	// participant could have redelivered the first command only adds to its queue.
	SettleRetry time.Duration
	// MaxBackoff caps the resend delay of commits and compensations (default 5m, well above
	// the participants' 30 s ack wait). Commands travel through the outbox and JetStream and
	// are not lost; a resend only helps when one was dead-lettered or a stream purged, while
	// every resend of every waiting saga lands in the queue the saga is waiting on.
	MaxBackoff time.Duration
}

// DefaultTiming is the documented default Timing.
var DefaultTiming = Timing{
	StepTimeout:   5 * time.Second,
	SagaTimeout:   30 * time.Second,
	RetryInterval: 2 * time.Second,
	SettleRetry:   30 * time.Second,
	MaxBackoff:    5 * time.Minute,
}

func (t Timing) withDefaults() Timing {
	if t.StepTimeout <= 0 {
		t.StepTimeout = DefaultTiming.StepTimeout
	}
	if t.SagaTimeout <= 0 {
		t.SagaTimeout = DefaultTiming.SagaTimeout
	}
	if t.RetryInterval <= 0 {
		t.RetryInterval = DefaultTiming.RetryInterval
	}
	if t.SettleRetry <= 0 {
		t.SettleRetry = DefaultTiming.SettleRetry
	}
	if t.MaxBackoff <= 0 {
		t.MaxBackoff = DefaultTiming.MaxBackoff
	}
	return t
}

// Backoff is the delay before attempt+1 of a forward command (reserve, charge) is sent:
// RetryInterval·2^(attempt-1), capped.
func (t Timing) Backoff(attempt int) time.Duration { return t.double(t.RetryInterval, attempt) }

// BackoffIn is the delay before attempt+1 of the command of state st is sent: Backoff in
// RESERVING and CHARGING, SettleRetry·2^(attempt-1), capped, in the others.
func (t Timing) BackoffIn(st State, attempt int) time.Duration {
	if st == Reserving || st == Charging {
		return t.Backoff(attempt)
	}
	return t.double(t.SettleRetry, attempt)
}

func (t Timing) double(d time.Duration, attempt int) time.Duration {
	for i := 1; i < attempt && d < t.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, t.MaxBackoff)
}

// Machine is the orchestrator's state machine (SAGA.md). It holds no state of its own;
// every method works on a Saga the Store has locked.
type Machine struct {
	t Timing
}

// NewMachine returns a Machine with t (zero fields take DefaultTiming's).
func NewMachine(t Timing) *Machine { return &Machine{t: t.withDefaults()} }

// Timing returns the machine's effective timing.
func (m *Machine) Timing() Timing { return m.t }

// replyKind is a reply type without its owner prefix.
func replyPayload(e events.Envelope) (orderID string, attempt int, reason, errText, paymentID string, err error) {
	switch e.Type {
	case events.TypeReplyStockReserved, events.TypeReplyStockRejected, events.TypeReplyStockReleased,
		events.TypeReplyStockCommitted, events.TypeReplyStockCommitFailed:
		var p events.InventoryReply
		if err := e.Decode(&p); err != nil {
			return "", 0, "", "", "", err
		}
		return p.OrderID, p.Attempt, p.Reason, "", "", nil
	case events.TypeReplyPaymentCharged, events.TypeReplyPaymentDeclined, events.TypeReplyPaymentFailed,
		events.TypeReplyPaymentRefunded:
		var p events.PaymentReply
		if err := e.Decode(&p); err != nil {
			return "", 0, "", "", "", err
		}
		return p.OrderID, p.Attempt, p.Reason, p.Error, p.PaymentID, nil
	}
	return "", 0, "", "", "", fmt.Errorf("%w: %s is not a saga reply", events.ErrInvalid, e.Type)
}

// OnReply applies a participant's reply to s (SAGA.md, orchestrator table). A reply that
// does not fit the state changes nothing (Effects.Changed false): duplicates, answers to a
// finished step, a `failed` of an older attempt. A late `charged` on RELEASING or CANCELLED
// starts a refund.
func (m *Machine) OnReply(ctx context.Context, s *Saga, e events.Envelope, now time.Time, stepTimeout time.Duration) (Effects, error) {
	orderID, attempt, reason, errText, paymentID, err := replyPayload(e)
	if err != nil {
		return Effects{}, err
	}
	if orderID != s.OrderID {
		return Effects{}, fmt.Errorf("%w: reply for order %s has subject %s", events.ErrInvalid, orderID, e.Subject)
	}
	ctx = e.Context(ctx)
	switch {
	case s.State == Reserving && e.Type == events.TypeReplyStockReserved:
		s.closeStep(now, StepDone, "")
		if !now.Before(s.SagaDeadlineAt) {
			// Never charge after the saga's deadline: give the stock back.
			return m.compensate(ctx, s, Releasing, ReasonTimeout, now)
		}
		return m.enter(ctx, s, Charging, now, stepTimeout)

	case s.State == Reserving && e.Type == events.TypeReplyStockRejected:
		r := ReasonOutOfStock
		switch reason {
		case events.RejectUnknownProduct:
			r = ReasonUnknownProduct
		case events.RejectReleased:
			// Only an answer to a reserve that came after our own release; not this state.
			return Effects{}, nil
		}
		s.closeStep(now, StepFailed, reason)
		return m.finish(ctx, s, Cancelled, r, now)

	case s.State == Charging && e.Type == events.TypeReplyPaymentCharged:
		s.PaymentID = paymentID
		s.closeStep(now, StepDone, "")
		return m.enter(ctx, s, Committing, now, stepTimeout)

	case s.State == Charging && e.Type == events.TypeReplyPaymentDeclined:
		s.closeStep(now, StepFailed, reason)
		return m.compensate(ctx, s, Releasing, ReasonPaymentDeclined, now)

	case s.State == Charging && e.Type == events.TypeReplyPaymentFailed:
		if attempt != s.Attempt {
			return Effects{}, nil // an older attempt's failure; a newer charge is in flight
		}
		s.LastFailed = true
		s.LastError = errText
		next := now.Add(m.t.Backoff(s.Attempt))
		s.NextAttemptAt = &next
		if st := s.current(); st != nil {
			st.Status, st.Error, st.At = StepRetrying, errText, now
		}
		s.Version++
		return Effects{Changed: true}, nil

	case s.State == Committing && e.Type == events.TypeReplyStockCommitted:
		s.closeStep(now, StepDone, "")
		return m.finish(ctx, s, Confirmed, "", now)

	case s.State == Committing && e.Type == events.TypeReplyStockCommitFailed:
		s.closeStep(now, StepFailed, reason)
		return m.compensate(ctx, s, Refunding, ReasonOutOfStock, now)

	case s.State == Refunding && e.Type == events.TypeReplyPaymentRefunded:
		s.closeStep(now, StepDone, "")
		return m.compensate(ctx, s, Releasing, s.Reason, now)

	case s.State == Releasing && e.Type == events.TypeReplyStockReleased:
		s.closeStep(now, StepDone, "")
		return m.finish(ctx, s, Cancelled, s.Reason, now)

	case (s.State == Releasing || s.State == Cancelled) && e.Type == events.TypeReplyPaymentCharged:
		// A charge we gave up on went through after all: refund it, then release again.
		if st := s.current(); st != nil {
			st.Error, st.At = "interrupted by a late charge: refund first, then release again", now
		}
		s.PaymentID = paymentID
		return m.compensate(ctx, s, Refunding, s.Reason, now)
	}
	return Effects{}, nil
}

// OnTimer applies s's due timers: a passed step deadline gives the step up (compensating
// what may have happened), a passed next_attempt_at sends the current command again with
// the next attempt number. Nothing due changes nothing.
func (m *Machine) OnTimer(ctx context.Context, s *Saga, now time.Time, stepTimeout time.Duration) (Effects, error) {
	if s.CorrelationID != "" {
		ctx = obs.WithCorrelationID(ctx, s.CorrelationID)
	}
	due := func(t *time.Time) bool { return t != nil && !now.Before(*t) }
	switch s.State {
	case Reserving:
		if due(s.StepDeadlineAt) || !now.Before(s.SagaDeadlineAt) {
			s.closeStep(now, StepTimedOut, "no reply before the step deadline")
			// The reserve may have happened: release it.
			return m.compensate(ctx, s, Releasing, ReasonTimeout, now)
		}
	case Charging:
		if due(s.StepDeadlineAt) || !now.Before(s.SagaDeadlineAt) {
			r, msg := ReasonTimeout, "no reply before the step deadline"
			if s.LastFailed {
				r, msg = ReasonPaymentFailed, "still failing at the step deadline: "+s.LastError
			}
			s.closeStep(now, StepTimedOut, msg)
			// A charge may exist: refund first (payments refuses a charge that comes after).
			return m.compensate(ctx, s, Refunding, r, now)
		}
	case Committing, Refunding, Releasing:
	default:
		return Effects{}, nil
	}
	if !due(s.NextAttemptAt) {
		return Effects{}, nil
	}
	s.Attempt++
	s.Version++
	next := now.Add(m.t.BackoffIn(s.State, s.Attempt))
	s.NextAttemptAt = &next
	if st := s.current(); st != nil {
		st.Attempts++
		st.At = now
	}
	env, err := m.command(ctx, s)
	if err != nil {
		return Effects{}, err
	}
	return Effects{Changed: true, Envelopes: []events.Envelope{env}}, nil
}

// Start initialises a new saga in RESERVING and returns its first command (reserve,
// attempt 1) and the order_placed event.
func (m *Machine) Start(ctx context.Context, s *Saga, placed events.OrderPlaced, now time.Time, stepTimeout time.Duration) ([]events.Envelope, error) {
	s.SagaDeadlineAt = now.Add(m.t.SagaTimeout)
	s.CorrelationID = obs.CorrelationID(ctx)
	s.Version = 0
	s.OrderStatus = StatusPending
	eff, err := m.enter(ctx, s, Reserving, now, stepTimeout)
	if err != nil {
		return nil, err
	}
	ev, err := events.New(ctx, events.TypeOrderPlaced, s.OrderID, s.Version, placed)
	if err != nil {
		return nil, err
	}
	return append([]events.Envelope{ev}, eff.Envelopes...), nil
}

// enter moves s into a forward state and sends its command, attempt 1.
func (m *Machine) enter(ctx context.Context, s *Saga, st State, now time.Time, stepTimeout time.Duration) (Effects, error) {
	s.State, s.StateSince = st, now
	s.Attempt, s.LastFailed, s.LastError = 1, false, ""
	s.Version++
	next := now.Add(m.t.BackoffIn(st, 1))
	s.NextAttemptAt = &next
	s.StepDeadlineAt = nil
	if st == Reserving || st == Charging {
		d := now.Add(stepTimeout)
		if d.After(s.SagaDeadlineAt) {
			d = s.SagaDeadlineAt
		}
		s.StepDeadlineAt = &d
	}
	s.Steps = append(s.Steps, Step{Name: stepOf(st), Status: StepPending, StartedAt: now, At: now, Attempts: 1})
	env, err := m.command(ctx, s)
	if err != nil {
		return Effects{}, err
	}
	return Effects{Changed: true, Envelopes: []events.Envelope{env}}, nil
}

// compensate enters REFUNDING or RELEASING with reason kept for the cancellation.
func (m *Machine) compensate(ctx context.Context, s *Saga, st State, reason string, now time.Time) (Effects, error) {
	s.Reason = reason
	return m.enter(ctx, s, st, now, 0)
}

// finish ends the saga; the order's public status and its event change only once (a saga
// reopened by a late charge ends in CANCELLED again without a second order_cancelled).
func (m *Machine) finish(ctx context.Context, s *Saga, st State, reason string, now time.Time) (Effects, error) {
	s.State, s.StateSince = st, now
	s.Reason = reason
	s.NextAttemptAt, s.StepDeadlineAt = nil, nil
	s.Version++
	if s.OrderStatus != StatusPending {
		return Effects{Changed: true}, nil
	}
	var (
		env   events.Envelope
		err   error
		final Status
	)
	if st == Confirmed {
		final = StatusConfirmed
		env, err = events.New(ctx, events.TypeOrderConfirmed, s.OrderID, s.Version, events.OrderConfirmed{
			OrderID: s.OrderID, UserID: s.UserID, PaymentID: s.PaymentID, Total: s.Total, ConfirmedAt: now})
	} else {
		final = StatusCancelled
		env, err = events.New(ctx, events.TypeOrderCancelled, s.OrderID, s.Version, events.OrderCancelled{
			OrderID: s.OrderID, UserID: s.UserID, Reason: reason, CancelledAt: now})
	}
	if err != nil {
		return Effects{}, err
	}
	s.OrderStatus = final
	return Effects{Changed: true, Envelopes: []events.Envelope{env}, Final: final}, nil
}

// command builds the current state's command with s.Attempt and s.Version: a new envelope,
// hence a new id, on every send.
func (m *Machine) command(ctx context.Context, s *Saga) (events.Envelope, error) {
	var (
		typ  string
		data any
	)
	switch s.State {
	case Reserving:
		typ, data = events.TypeCmdReserveStock, events.ReserveStock{OrderID: s.OrderID, UserID: s.UserID, Attempt: s.Attempt, Items: s.Items}
	case Charging:
		typ, data = events.TypeCmdChargePayment, events.ChargePayment{OrderID: s.OrderID, UserID: s.UserID, Attempt: s.Attempt,
			Amount: s.Total.Amount, Currency: s.Total.Currency}
	case Committing:
		typ, data = events.TypeCmdCommitStock, events.CommitStock{OrderID: s.OrderID, UserID: s.UserID, Attempt: s.Attempt}
	case Refunding:
		typ, data = events.TypeCmdRefundPayment, events.RefundPayment{OrderID: s.OrderID, UserID: s.UserID, Attempt: s.Attempt, Reason: s.Reason}
	case Releasing:
		typ, data = events.TypeCmdReleaseStock, events.ReleaseStock{OrderID: s.OrderID, UserID: s.UserID, Attempt: s.Attempt, Reason: s.Reason}
	default:
		return events.Envelope{}, fmt.Errorf("saga %s: no command in state %s", s.OrderID, s.State)
	}
	return events.New(ctx, typ, s.OrderID, s.Version, data)
}

func stepOf(st State) string {
	switch st {
	case Reserving:
		return StepReserve
	case Charging:
		return StepCharge
	case Committing:
		return StepCommit
	case Refunding:
		return StepRefund
	case Releasing:
		return StepRelease
	}
	return ""
}

// current returns the step of the current state, or nil.
func (s *Saga) current() *Step {
	if len(s.Steps) == 0 {
		return nil
	}
	st := &s.Steps[len(s.Steps)-1]
	if st.Name != stepOf(s.State) {
		return nil
	}
	return st
}

func (s *Saga) closeStep(now time.Time, status, errText string) {
	if st := s.current(); st != nil {
		st.Status, st.At = status, now
		if errText != "" {
			st.Error = errText
		}
	}
}
