package labs

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Lab 03: idempotency. inventory's deduplication off and duplicates 3: one order's reserve
// arrives three times and holds the stock three times; the auditor's ledger-held check
// shows it; dedup back on and POST /stock/{id}/reconcile repair it.

func init() {
	Register(3, Funcs{Start: start03, Verify: verify03, Solve: solve03, Reset: reset03})
}

const lab03Stock = 10

// ledger03 is inventory's ledger of the lab's product.
type ledger03 struct {
	Available int64 `json:"available"`
	Reserved  int64 `json:"reserved"`
	Held      int64 `json:"held"`
	Sold      int64 `json:"sold"`
	Released  int64 `json:"released"`
}

func ledgerOf03(ctx context.Context, e *Env, productID string) (ledger03, error) {
	var l ledger03
	_, err := e.Owner(ctx, "inventory", "GET", "/stock/"+url.PathEscape(productID)+"/ledger", nil, &l)
	return l, err
}

func start03(ctx context.Context, e *Env) error {
	if err := e.SetAddress(ctx, "ben"); err != nil {
		return err
	}
	id, err := e.CreateProduct(ctx, "product", "Lab 03 twice-held beans", lab03Stock)
	if err != nil {
		return err
	}
	e.Logf("product %s (stock %d); customer ben; inventory.dedup off, duplicates 3", id, lab03Stock)
	return nil
}

// reset03 leaves no unit held twice: dedup on, ben's orders finished, the excess given
// back, the product deleted. It works in any state.
func reset03(ctx context.Context, e *Env) error {
	if _, err := e.AdminCall(ctx, "DELETE", "/api/admin/faults", nil, nil); err != nil {
		return err
	}
	if _, ok := e.User("ben"); ok {
		if orders, err := e.UserOrders(ctx, "ben"); err == nil {
			for _, o := range orders {
				if o.Status == "PENDING" {
					if _, err := e.WaitOrder(ctx, "ben", o.ID, 120*time.Second); err != nil {
						return err
					}
				}
			}
		}
	}
	if pid := e.Get("product"); pid != "" {
		code, err := e.Owner(ctx, "inventory", "POST", "/stock/"+url.PathEscape(pid)+"/reconcile", nil, nil)
		if err != nil && code != 404 {
			return err
		}
	}
	return e.DeleteProduct(ctx, "product")
}

func verify03(ctx context.Context, e *Env) ([]string, error) {
	pid := e.Get("product")
	if _, ok := e.User("ben"); !ok || pid == "" {
		return []string{"lab 03 is not started (./scripts/lab start 3)"}, nil
	}
	var fails []string
	orders, err := e.UserOrders(ctx, "ben")
	if err != nil {
		return nil, err
	}
	finished := false
	for _, o := range orders {
		finished = finished || o.Status == "CONFIRMED" || o.Status == "CANCELLED"
	}
	if !finished {
		fails = append(fails, "ben has no finished order: place an order of 2 units of the lab's product as ben and wait until it is CONFIRMED (GET /api/orders shows his orders)")
	}
	var faults struct {
		Patterns map[string]string `json:"patterns"`
	}
	if _, err := e.AdminCall(ctx, "GET", "/api/admin/faults", nil, &faults); err != nil {
		return nil, err
	}
	if v := faults.Patterns["inventory.dedup"]; v != "on" {
		fails = append(fails, fmt.Sprintf("inventory's deduplication is %q: turn it on with PUT /api/admin/faults {\"patterns\": {\"inventory.dedup\": \"on\"}} (before repairing, or the next duplicate holds again)", v))
	}
	l, err := ledgerOf03(ctx, e, pid)
	if err != nil {
		return nil, err
	}
	if l.Reserved != l.Held {
		fails = append(fails, fmt.Sprintf("product %s counts %d units reserved but its active reservations hold %d (./scripts/audit: ledger-held; GET /stock/%s/ledger on inventory): give the excess back with POST /stock/%s/reconcile", pid, l.Reserved, l.Held, pid, pid))
	}
	if l.Released == 0 {
		fails = append(fails, fmt.Sprintf("no unit of product %s was ever given back: the double hold never happened or was never repaired (order with dedup off and duplicates 3, then reconcile)", pid))
	}
	return fails, nil
}

func solve03(ctx context.Context, e *Env) error {
	pid := e.Get("product")
	id, err := e.PlaceOrder(ctx, "ben", OrderLine{ProductID: pid, Quantity: 2})
	if err != nil {
		return err
	}
	o, err := e.WaitOrder(ctx, "ben", id, 120*time.Second)
	if err != nil {
		return err
	}
	l, err := ledgerOf03(ctx, e, pid)
	if err != nil {
		return err
	}
	e.Logf("order %s %s; ledger: available %d reserved %d held %d sold %d", id, o.Status, l.Available, l.Reserved, l.Held, l.Sold)
	rep, err := e.Audit(ctx)
	if err != nil {
		return err
	}
	for _, v := range rep.Violations {
		if v.Kind == "ledger-held" {
			e.Logf("auditor: %s", v)
		}
	}
	if _, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{"patterns": map[string]string{"inventory.dedup": "on"}}, nil); err != nil {
		return err
	}
	var rec struct {
		Returned int64 `json:"returned"`
	}
	if _, err := e.Owner(ctx, "inventory", "POST", "/stock/"+url.PathEscape(pid)+"/reconcile", nil, &rec); err != nil {
		return err
	}
	e.Logf("reconcile gave back %d units", rec.Returned)
	return nil
}
