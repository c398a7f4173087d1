package labs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Lab 04: the saga and its compensations. The learner places three orders that fail in
// three ways — payment declined, payments down past the step timeout, out of stock —
// and reads each step; verify checks the three cancel reasons and that no stock or money
// stays held (the auditor's per-order check), with payments healthy again.

func init() {
	Register(4, Funcs{Start: start04, Verify: verify04, Solve: solve04, Reset: reset04})
}

const lab04Stock = 3

var lab04Reasons = []string{"payment_declined", "timeout", "out_of_stock"}

func start04(ctx context.Context, e *Env) error {
	if err := e.SetAddress(ctx, "ana"); err != nil {
		return err
	}
	id, err := e.CreateProduct(ctx, "product", "Lab 04 saga beans", lab04Stock)
	if err != nil {
		return err
	}
	e.Logf("product %s (stock %d); customer ana", id, lab04Stock)
	return nil
}

func reset04(ctx context.Context, e *Env) error {
	// Payments must be up for the compensations of an order left half-way to finish.
	if err := e.ClearFaults(ctx); err != nil {
		return err
	}
	if ana, ok := e.User("ana"); ok {
		// wait for ana's orders to finish, so that reset leaves nothing in flight
		orders, err := e.UserOrders(ctx, "ana")
		if err == nil {
			for _, o := range orders {
				if o.Status == "PENDING" {
					if _, err := e.WaitOrder(ctx, "ana", o.ID, 60*time.Second); err != nil {
						return fmt.Errorf("ana (%s): %w", ana.ID, err)
					}
				}
			}
		}
	}
	return e.DeleteProduct(ctx, "product")
}

func verify04(ctx context.Context, e *Env) ([]string, error) {
	if _, ok := e.User("ana"); !ok {
		return []string{"lab 04 is not started (./scripts/lab start 4)"}, nil
	}
	var fails []string
	var faults struct {
		Payments struct {
			DeclineRate float64 `json:"declineRate"`
			ErrorRate   float64 `json:"errorRate"`
			Down        bool    `json:"down"`
		} `json:"payments"`
	}
	if _, err := e.AdminCall(ctx, "GET", "/api/admin/faults", nil, &faults); err != nil {
		return nil, err
	}
	if p := faults.Payments; p.Down || p.DeclineRate > 0 || p.ErrorRate > 0 {
		fails = append(fails, fmt.Sprintf("payments is not healthy again (down %v, declineRate %g, errorRate %g): PUT /api/admin/faults {\"payments\": {\"down\": false, \"declineRate\": 0, \"errorRate\": 0}} or the console's faults panel", p.Down, p.DeclineRate, p.ErrorRate))
	}
	orders, err := e.UserOrders(ctx, "ana")
	if err != nil {
		return nil, err
	}
	found := map[string]string{} // reason → order id
	var pending []string
	for _, o := range orders {
		switch {
		case o.Status == "PENDING":
			pending = append(pending, o.ID)
		case o.Status == "CANCELLED" && slices.Contains(lab04Reasons, o.CancelReason) && found[o.CancelReason] == "":
			found[o.CancelReason] = o.ID
		}
	}
	if len(pending) > 0 {
		fails = append(fails, fmt.Sprintf("ana's orders %s are still PENDING: read their steps (GET /api/orders/{id}, console sagas); a compensation may be waiting for payments to come back", strings.Join(pending, ", ")))
	}
	where := map[string]string{
		"payment_declined": "set payments.declineRate to 1, order, and set it back to 0",
		"timeout":          "set payments.down to true, order, wait past saga.stepTimeoutMs (watch the steps), then bring payments back",
		"out_of_stock":     fmt.Sprintf("order more than the %d in stock of the lab's product", lab04Stock),
	}
	for _, reason := range lab04Reasons {
		id := found[reason]
		if id == "" {
			fails = append(fails, fmt.Sprintf("no order of ana CANCELLED with reason %s: %s (GET /api/orders)", reason, where[reason]))
			continue
		}
		_, vs, err := e.OrderFacts(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			fails = append(fails, fmt.Sprintf("order %s (%s) holds something: %s (./scripts/audit)", id, reason, v))
		}
	}
	if pid := e.Get("product"); pid != "" {
		var s struct {
			Available int `json:"available"`
			Reserved  int `json:"reserved"`
		}
		if _, err := e.Owner(ctx, "inventory", "GET", "/stock/"+url.PathEscape(pid), nil, &s); err != nil {
			return nil, err
		}
		if s.Reserved != 0 {
			fails = append(fails, fmt.Sprintf("the lab's product still has %d reserved: a release has not happened (GET /api/products/%s)", s.Reserved, pid))
		}
	}
	return fails, nil
}

func setPayments(ctx context.Context, e *Env, p map[string]any) error {
	_, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{"payments": p}, nil)
	return err
}

func solve04(ctx context.Context, e *Env) error {
	pid := e.Get("product")
	if pid == "" {
		return errors.New("lab 04 is not started")
	}
	wait := func(id, want string) error {
		o, err := e.WaitOrder(ctx, "ana", id, 90*time.Second)
		if err != nil {
			return err
		}
		e.Logf("order %s: %s %s", id, o.Status, o.CancelReason)
		if o.CancelReason != want {
			return fmt.Errorf("order %s ended %s %q, not CANCELLED %s", id, o.Status, o.CancelReason, want)
		}
		return nil
	}
	// place orders an order and waits for its end; a loaded machine can time a step out
	// (reason timeout) before the failure the case is about: try again, up to 3 times.
	place := func(qty int, want string) error {
		var err error
		for range 3 {
			var id string
			if id, err = e.PlaceOrder(ctx, "ana", OrderLine{pid, qty}); err != nil {
				return err
			}
			if err = wait(id, want); err == nil {
				return nil
			}
		}
		return err
	}
	// 1. declined
	if err := setPayments(ctx, e, map[string]any{"declineRate": 1}); err != nil {
		return err
	}
	err := place(1, "payment_declined")
	if perr := setPayments(ctx, e, map[string]any{"declineRate": 0}); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	// 2. out of stock: one more than available now
	var st struct {
		Available int `json:"available"`
	}
	if _, err := e.Owner(ctx, "inventory", "GET", "/stock/"+url.PathEscape(pid), nil, &st); err != nil {
		return err
	}
	if err := place(min(st.Available+1, 100), "out_of_stock"); err != nil {
		return err
	}
	// 3. payments down past the step timeout; back up once the saga compensates. Tried up
	// to 3 times: on a shared platform someone else may clear the faults meanwhile, and
	// the order is then simply CONFIRMED.
	for attempt := 1; ; attempt++ {
		id, gaveUp, err := timeoutCase04(ctx, e, pid)
		if perr := setPayments(ctx, e, map[string]any{"down": false}); err == nil {
			err = perr
		}
		if err != nil {
			return err
		}
		if gaveUp {
			return wait(id, "timeout")
		}
		e.Logf("order %s was not held up by the outage (the switch was cleared?): again", id)
		if attempt == 3 {
			return fmt.Errorf("three orders went through although payments was switched down")
		}
	}
}

// timeoutCase04 switches payments down, places an order and waits until the saga gives up
// on the charge (a refund step appears); gaveUp is false when the order finished instead.
func timeoutCase04(ctx context.Context, e *Env, pid string) (id string, gaveUp bool, err error) {
	sw := map[string]any{"saga": map[string]any{"stepTimeoutMs": 3000}, "payments": map[string]any{"down": true}}
	if _, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", sw, nil); err != nil {
		return "", false, err
	}
	// payments' consumers read the stored switch every PAYMENTS_FAULT_POLL (1 s): an order
	// placed at once could still be charged.
	select {
	case <-ctx.Done():
		return "", false, ctx.Err()
	case <-time.After(2500 * time.Millisecond):
	}
	if id, err = e.PlaceOrder(ctx, "ana", OrderLine{pid, 1}); err != nil {
		return "", false, err
	}
	err = Eventually(ctx, 60*time.Second, "the saga to give up on the charge", func() (bool, error) {
		var o Order
		_, err := e.UserCall(ctx, "ana", "GET", "/api/orders/"+url.PathEscape(id), nil, nil, &o)
		for _, s := range o.Steps {
			if strings.Contains(strings.ToLower(s.Name), "refund") {
				gaveUp = true
			}
		}
		return gaveUp || o.Status == "CONFIRMED" || o.Status == "CANCELLED", err
	})
	return id, gaveUp, err
}
