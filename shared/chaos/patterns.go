package chaos

import (
	"slices"
	"strings"
)

// Pattern is one pattern switch: a lab switch that turns a service's safe design off to
// make its anomaly visible (issue 16). Its first value is the default, the safe design;
// every switch is off (default) unless a lab turns it on through the faults API.
type Pattern struct {
	// Name is "<service>.<switch>", the key of patterns in the faults API.
	Name string
	// Values are the allowed values, the default first.
	Values []string
	// What says in words what the non-default values do.
	What string
}

// Service returns the service part of the switch's name.
func (p Pattern) Service() string { s, _, _ := strings.Cut(p.Name, "."); return s }

// Default returns the switch's default value.
func (p Pattern) Default() string { return p.Values[0] }

// Pattern switch names.
const (
	// PatternUsersPublish: "outbox" (events in the transaction, relayed) or "direct"
	// (commit without an outbox row, then publish: the dual write).
	PatternUsersPublish = "users.publish"
	// PatternInventoryDedup: "on" or "off" (inventory's saga commands skip the natural-key
	// idempotency per (order, verb), so a duplicated reserve holds stock again).
	PatternInventoryDedup = "inventory.dedup"
	// PatternOrdersAddressCopy: "async" (orders' local copy, fed by users' events) or
	// "sync" (orders asks users' API at order time).
	PatternOrdersAddressCopy = "orders.addressCopy"
)

// Pattern values.
const (
	PublishOutbox = "outbox"
	PublishDirect = "direct"
	DedupOn       = "on"
	DedupOff      = "off"
	CopyAsync     = "async"
	CopySync      = "sync"
)

// Patterns is the one table of every pattern switch. README.md (top level) repeats it.
var Patterns = []Pattern{
	{PatternUsersPublish, []string{PublishOutbox, PublishDirect},
		"direct: users commits a change without an outbox row and then publishes its event itself (the dual write); " +
			"crash point users.direct.before_publish between the commit and the publish loses the event"},
	{PatternInventoryDedup, []string{DedupOn, DedupOff},
		"off: inventory's reserve skips its per-(order, verb) idempotency, so a duplicated command (duplicates 2..3) " +
			"holds the order's stock again; the auditor's ledger-held check shows it"},
	{PatternOrdersAddressCopy, []string{CopyAsync, CopySync},
		"sync: orders reads the shipping address from users' API at order time instead of its local copy; " +
			"users down means no order (503)"},
}

// LookupPattern returns the pattern switch named name.
func LookupPattern(name string) (Pattern, bool) {
	i := slices.IndexFunc(Patterns, func(p Pattern) bool { return p.Name == name })
	if i < 0 {
		return Pattern{}, false
	}
	return Patterns[i], true
}

// PatternsOf returns the pattern switches of service, in table order.
func PatternsOf(service string) []Pattern {
	var out []Pattern
	for _, p := range Patterns {
		if p.Service() == service {
			out = append(out, p)
		}
	}
	return out
}

func checkPattern(service, name, value string) error {
	p, ok := LookupPattern(name)
	switch {
	case !ok:
		return &ValidationError{Field: "patterns." + name, Reason: "is not a pattern switch"}
	case p.Service() != service:
		return &ValidationError{Field: "patterns." + name, Reason: "belongs to " + p.Service() + ", not " + service}
	case !slices.Contains(p.Values, value):
		return &ValidationError{Field: "patterns." + name, Reason: "must be one of " + strings.Join(p.Values, ", ")}
	}
	return nil
}

// Pattern returns the current value of the pattern switch name (its default when it was
// never set, or when s is nil).
func (s *Switches) Pattern(name string) string {
	p, ok := LookupPattern(name)
	if !ok {
		return ""
	}
	if s == nil {
		return p.Default()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.state.Patterns[name]; ok && slices.Contains(p.Values, v) {
		return v
	}
	return p.Default()
}

// patternValues returns every pattern switch of the service with its current value.
func (s *Switches) patternValues(st State) map[string]string {
	out := map[string]string{}
	for _, p := range PatternsOf(s.service) {
		out[p.Name] = p.Default()
		if v, ok := st.Patterns[p.Name]; ok && slices.Contains(p.Values, v) {
			out[p.Name] = v
		}
	}
	return out
}
