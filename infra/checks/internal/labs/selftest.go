package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// SelfTest proves one lab: reset → start → verify must fail (its FAIL lines printed) →
// solve → verify must pass → reset, then the platform is as before: the faults document
// equals the one read before the lab, the lab's named users cannot log in, and the
// auditor finds no violation. It returns the first broken point.
func (r *Runner) SelfTest(ctx context.Context, m Manifest) (err error) {
	e, err := r.env(m)
	if err != nil {
		return err
	}
	t0 := time.Now()
	phase := func(name string) func() {
		fmt.Fprintf(r.Out, "  lab %02d %s\n", m.ID, name)
		p0 := time.Now()
		return func() { fmt.Fprintf(r.Out, "  lab %02d %s: %.1fs\n", m.ID, name, time.Since(p0).Seconds()) }
	}
	if err := r.Reset(ctx, m); err != nil {
		return err
	}
	var before json.RawMessage
	if _, err := e.AdminCall(ctx, "GET", "/api/admin/faults", nil, &before); err != nil {
		return err
	}
	// Violations already there (another lab's run, a chaos run) are not this lab's.
	known, err := auditFindings(ctx, e)
	if err != nil {
		return err
	}
	clean := false
	defer func() { // on failure too, leave the platform as it was
		if clean {
			return
		}
		if rerr := r.Reset(context.WithoutCancel(ctx), m); rerr != nil && err == nil {
			err = rerr
		}
	}()

	done := phase("start")
	if err := r.Start(ctx, m, true); err != nil {
		return err
	}
	done()
	done = phase("verify (must fail)")
	fails, err := r.Verify(ctx, m)
	if err == nil {
		return fmt.Errorf("lab %02d: verify passed right after start — the lab checks nothing the learner must do", m.ID)
	}
	if !errors.Is(err, ErrUnmet) {
		return err
	}
	done()
	fmt.Fprintf(r.Out, "  lab %02d verify failed as it must (%d points)\n", m.ID, len(fails))
	done = phase("solve")
	if err := r.Solve(ctx, m); err != nil {
		return err
	}
	done()
	done = phase("verify (must pass)")
	if _, err := r.Verify(ctx, m); err != nil {
		if errors.Is(err, ErrUnmet) {
			return fmt.Errorf("lab %02d: verify fails after solve", m.ID)
		}
		return err
	}
	done()
	own, err := ownIDs(ctx, r, m)
	if err != nil {
		return err
	}
	done = phase("reset")
	if err := r.Reset(ctx, m); err != nil {
		return err
	}
	clean = true
	done()
	if err := r.checkClean(ctx, e, before, known, own); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "ok   lab %02d %s (%.1fs)\n", m.ID, m.Slug, time.Since(t0).Seconds())
	return nil
}

// checkClean checks that the platform is as before the lab.
func (r *Runner) checkClean(ctx context.Context, e *Env, before json.RawMessage, known map[string]bool, own []string) error {
	var after json.RawMessage
	if _, err := e.AdminCall(ctx, "GET", "/api/admin/faults", nil, &after); err != nil {
		return err
	}
	var b, a any
	_ = json.Unmarshal(before, &b)
	_ = json.Unmarshal(after, &a)
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("lab %02d: after reset the faults are %s, before the lab %s", e.M.ID, compact(after), compact(before))
	}
	for _, name := range e.M.Users {
		gone, err := e.UserGone(ctx, name)
		if err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("lab %02d: user %s still logs in after reset", e.M.ID, UserEmail(e.M.ID, name))
		}
	}
	found, err := auditFindings(ctx, e)
	if err != nil {
		return fmt.Errorf("lab %02d: audit after reset: %w", e.M.ID, err)
	}
	var added []string
	for f := range found {
		if !known[f] && (!r.Shared || slices.ContainsFunc(own, func(id string) bool { return strings.Contains(f, id) })) {
			added = append(added, f)
		}
	}
	if len(added) > 0 {
		sort.Strings(added)
		for _, f := range added {
			fmt.Fprintln(r.Out, "    AUDIT", f)
		}
		return fmt.Errorf("lab %02d: the auditor finds %d new violations or stuck orders after reset", e.M.ID, len(added))
	}
	return nil
}

// ownIDs are the ids a lab's run made: its users' orders and the ids it noted (Set).
func ownIDs(ctx context.Context, r *Runner, m Manifest) ([]string, error) {
	e, err := r.env(m)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, name := range m.Users {
		if _, ok := e.User(name); !ok {
			continue
		}
		orders, err := e.UserOrders(ctx, name)
		if err != nil {
			continue // a deleted user (lab 07) lists nothing
		}
		for _, o := range orders {
			ids = append(ids, o.ID)
		}
	}
	for _, v := range e.st.Values {
		if len(v) >= 32 && !strings.Contains(v, ",") {
			ids = append(ids, v)
		}
	}
	return ids, nil
}

// auditFindings runs the auditor and returns its violations and stuck orders as strings.
func auditFindings(ctx context.Context, e *Env) (map[string]bool, error) {
	rep, err := e.Audit(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, v := range rep.Violations {
		out[v.String()] = true
	}
	for _, id := range rep.Stuck {
		out["stuck order "+id] = true
	}
	return out, nil
}
