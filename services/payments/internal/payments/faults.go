package payments

import (
	"math/rand/v2"
	"time"
)

// Faults are the lab's failure-injection switches (SPEC.md "Faults"). They are stored, so
// they survive a restart, and every command reads them afresh.
type Faults struct {
	// DeclineRate (0..1) is the probability that a new charge is declined. A decline is
	// stored and final, like a real one.
	DeclineRate float64 `json:"declineRate"`
	// ErrorRate (0..1) is the probability that a new charge fails transiently: the reply
	// is failed and nothing is stored, so the orchestrator's retry is tried afresh.
	ErrorRate float64 `json:"errorRate"`
	// LatencyMs (0..20000) is slept before handling each command.
	LatencyMs int `json:"latencyMs"`
	// Down stops the command consumers fetching (they are detached, not nak'ing) and makes
	// the business API answer 503.
	Down bool `json:"down"`
}

// Limits of the fault switches.
const (
	MaxLatencyMs = 20000
)

// FaultsPatch is a partial update: only non-nil fields change.
type FaultsPatch struct {
	DeclineRate *float64 `json:"declineRate"`
	ErrorRate   *float64 `json:"errorRate"`
	LatencyMs   *int     `json:"latencyMs"`
	Down        *bool    `json:"down"`
}

// Validate reports the first out-of-range field as a *FieldError.
func (p FaultsPatch) Validate() error {
	rate := func(name string, v *float64) error {
		if v != nil && !(*v >= 0 && *v <= 1) { // also rejects NaN
			return &FieldError{Field: name, Reason: "must be between 0 and 1"}
		}
		return nil
	}
	if err := rate("declineRate", p.DeclineRate); err != nil {
		return err
	}
	if err := rate("errorRate", p.ErrorRate); err != nil {
		return err
	}
	if p.LatencyMs != nil && (*p.LatencyMs < 0 || *p.LatencyMs > MaxLatencyMs) {
		return &FieldError{Field: "latencyMs", Reason: "must be between 0 and 20000"}
	}
	return nil
}

// Apply changes the fields p names.
func (p FaultsPatch) Apply(f *Faults) {
	if p.DeclineRate != nil {
		f.DeclineRate = *p.DeclineRate
	}
	if p.ErrorRate != nil {
		f.ErrorRate = *p.ErrorRate
	}
	if p.LatencyMs != nil {
		f.LatencyMs = *p.LatencyMs
	}
	if p.Down != nil {
		f.Down = *p.Down
	}
}

// Latency returns LatencyMs as a duration.
func (f Faults) Latency() time.Duration { return time.Duration(f.LatencyMs) * time.Millisecond }

// Decide reports whether an event of probability rate happens. The default, RandomDecide,
// draws from math/rand/v2's generator, which is seeded randomly once per process; tests
// inject a deterministic one.
type Decide func(rate float64) bool

// RandomDecide is the default Decide: true with probability rate (never for 0, always for 1).
func RandomDecide(rate float64) bool { return rate > 0 && rand.Float64() < rate }
