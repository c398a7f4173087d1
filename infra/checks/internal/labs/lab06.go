package labs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"time"
)

// Lab 06: API composition under failure. The gateway composes a product (catalog +
// inventory's availability) and an order (orders + users + catalog + payments); a
// dependency that fails is left out and named in "degraded". The learner takes inventory
// and payments down (the faults' down switches, or ./scripts/stack stop), reads both
// answers, writes what was degraded and what was missing into the answers file, and brings
// everything back.

func init() {
	Register(6, Funcs{Start: start06, Verify: verify06, Solve: solve06, Reset: reset06})
}

type answers06Part struct {
	Degraded     []string `json:"degraded"`
	MissingField string   `json:"missingField"`
}

type answers06 struct {
	Product answers06Part `json:"product"`
	Order   answers06Part `json:"order"`
}

const answers06Template = `{
  "product": {"degraded": [], "missingField": ""},
  "order":   {"degraded": [], "missingField": ""}
}
`

func start06(ctx context.Context, e *Env) error {
	if err := e.SetAddress(ctx, "ana"); err != nil {
		return err
	}
	pid, err := e.CreateProduct(ctx, "product", "Lab 06 composed beans", 10)
	if err != nil {
		return err
	}
	oid, err := e.PlaceOrder(ctx, "ana", OrderLine{pid, 1})
	if err != nil {
		return err
	}
	if _, err := e.WaitOrder(ctx, "ana", oid, 60*time.Second); err != nil {
		return err
	}
	e.Set("order", oid)
	if err := os.MkdirAll(e.StateDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(e.Path("answers.json"), []byte(answers06Template), 0o644); err != nil {
		return err
	}
	e.Logf("product GET /api/products/%s, ana's order GET /api/orders/%s; answers file %s", pid, oid, e.Path("answers.json"))
	return nil
}

func reset06(ctx context.Context, e *Env) error {
	// A learner may have stopped a service for real.
	for _, svc := range []string{"inventory", "payments"} {
		if _, err := e.Owner(ctx, svc, "GET", "/healthz", nil, nil); err != nil {
			e.Logf("%s does not answer: starting it", svc)
			if err := e.Script(ctx, "stack", "start", svc); err != nil {
				return err
			}
		}
	}
	if err := e.ClearFaults(ctx); err != nil {
		return err
	}
	return e.DeleteProduct(ctx, "product")
}

// composed06 reads the composed product and order as ana.
func composed06(ctx context.Context, e *Env) (prod, order map[string]json.RawMessage, err error) {
	if _, err = e.UserCall(ctx, "ana", "GET", "/api/products/"+url.PathEscape(e.Get("product")), nil, nil, &prod); err != nil {
		return nil, nil, err
	}
	_, err = e.UserCall(ctx, "ana", "GET", "/api/orders/"+url.PathEscape(e.Get("order")), nil, nil, &order)
	return prod, order, err
}

func degradedOf(doc map[string]json.RawMessage) []string {
	var d []string
	_ = json.Unmarshal(doc["degraded"], &d)
	return d
}

func verify06(ctx context.Context, e *Env) ([]string, error) {
	if e.Get("order") == "" {
		return []string{"lab 06 is not started (./scripts/lab start 6)"}, nil
	}
	var fails []string
	b, err := os.ReadFile(e.Path("answers.json"))
	if err != nil {
		return []string{fmt.Sprintf("no answers file %s", e.Path("answers.json"))}, nil
	}
	var a answers06
	if err := json.Unmarshal(b, &a); err != nil {
		return []string{fmt.Sprintf("%s is not valid JSON: %v", e.Path("answers.json"), err)}, nil
	}
	// (A slow machine may add another late dependency; the one taken down must be named.)
	if !slices.Contains(a.Product.Degraded, "inventory") || a.Product.MissingField != "availability" {
		fails = append(fails, "product: with inventory down, GET /api/products/{id} names a degraded dependency and leaves one field out — write both (faults: {\"inventory\": {\"down\": true}}, or ./scripts/stack stop inventory)")
	}
	if !slices.Contains(a.Order.Degraded, "payments") || a.Order.MissingField != "payment" {
		fails = append(fails, "order: with payments down, GET /api/orders/{id} names a degraded dependency and leaves one field out — write both (faults: {\"payments\": {\"down\": true}})")
	}
	prod, order, err := composed06(ctx, e)
	if err != nil {
		fails = append(fails, fmt.Sprintf("the composed answers fail: %v — is everything back up? (./scripts/stack status)", err))
		return fails, nil
	}
	if d := degradedOf(prod); len(d) > 0 {
		fails = append(fails, fmt.Sprintf("GET /api/products/%s is still degraded %v: bring the dependency back (faults down: false, or ./scripts/stack start)", e.Get("product"), d))
	}
	if d := degradedOf(order); len(d) > 0 {
		fails = append(fails, fmt.Sprintf("GET /api/orders/%s is still degraded %v: bring the dependency back", e.Get("order"), d))
	}
	return fails, nil
}

func solve06(ctx context.Context, e *Env) error {
	if e.Get("order") == "" {
		return errors.New("lab 06 is not started")
	}
	var a answers06
	down := func(section string, on bool) error {
		_, err := e.AdminCall(ctx, "PUT", "/api/admin/faults", map[string]any{section: map[string]any{"down": on}}, nil)
		return err
	}
	observe := func(section string, pick func(prod, order map[string]json.RawMessage) map[string]json.RawMessage, field string, into *answers06Part) error {
		if err := down(section, true); err != nil {
			return err
		}
		defer func() { _ = down(section, false) }()
		return Eventually(ctx, 10*time.Second, section+" degraded", func() (bool, error) {
			prod, order, err := composed06(ctx, e)
			if err != nil {
				return false, err
			}
			doc := pick(prod, order)
			into.Degraded = degradedOf(doc)
			if _, present := doc[field]; !present && slices.Contains(into.Degraded, section) {
				into.MissingField = field
				return true, nil
			}
			return false, nil
		})
	}
	if err := observe("inventory", func(p, _ map[string]json.RawMessage) map[string]json.RawMessage { return p }, "availability", &a.Product); err != nil {
		return err
	}
	if err := observe("payments", func(_, o map[string]json.RawMessage) map[string]json.RawMessage { return o }, "payment", &a.Order); err != nil {
		return err
	}
	e.Logf("product degraded %v without %s; order degraded %v without %s", a.Product.Degraded, a.Product.MissingField, a.Order.Degraded, a.Order.MissingField)
	b, _ := json.MarshalIndent(a, "", "  ")
	return os.WriteFile(e.Path("answers.json"), append(b, '\n'), 0o644)
}
