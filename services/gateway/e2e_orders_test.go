package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"polyshop/shared/testenv"
)

// newE2E returns a client of the running platform's gateway, or skips the test without
// POLYSHOP_E2E=1 (under CI=true an unreachable gateway fails it).
func newE2E(t *testing.T) e2e {
	t.Helper()
	if os.Getenv("POLYSHOP_E2E") != "1" {
		t.Skip("end-to-end test: set POLYSHOP_E2E=1 with the platform running (scripts/test does)")
	}
	base := os.Getenv("POLYSHOP_E2E_GATEWAY_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	c := e2e{t: t, base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 10 * time.Second}}
	if resp, err := c.hc.Get(c.base + "/healthz"); err != nil {
		testenv.Require(t, "gateway", err)
	} else {
		resp.Body.Close()
	}
	return c
}

// admin logs in as ADMIN_EMAIL / ADMIN_PASSWORD.
func (c e2e) admin() string {
	c.t.Helper()
	token, _ := c.login(testenv.Getenv("ADMIN_EMAIL"), testenv.Getenv("ADMIN_PASSWORD"))
	return token
}

// e2eAccount is a customer the end-to-end tests sign in as.
type e2eAccount struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// customers returns the tokens of n signed-in customers with a shipping address. The
// customers of earlier runs are reused (listed in e2e-customers.json in the platform's
// state directory, .polyshop/): users throttles sign-ups per client address
// (USERS_SIGNUP_CLIENT_MAX, 20 an hour), and every test and tool on this machine is the
// same client, 127.0.0.1. New ones are signed up only when fewer than n can log in.
func (c e2e) customers(n int) []string {
	c.t.Helper()
	const password = "e2e pass phrase 1"
	state := os.Getenv("POLYSHOP_STATE")
	if state == "" {
		if root, err := testenv.RepoRoot(); err == nil {
			state = filepath.Join(root, ".polyshop")
		} else {
			state = os.TempDir()
		}
	}
	file := filepath.Join(state, "e2e-customers.json")
	var saved, live []e2eAccount
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &saved)
	}
	var tokens []string
	for _, a := range saved {
		if len(tokens) == n {
			live = append(live, a)
			continue
		}
		status, body, _ := c.do("POST", "/api/sessions", "", map[string]string{"email": a.Email, "password": a.Password})
		var s struct{ Token string }
		if status != http.StatusCreated || json.Unmarshal(body, &s) != nil {
			continue // deleted, or the platform's data was reset: forget it
		}
		live = append(live, a)
		tokens = append(tokens, s.Token)
	}
	for len(tokens) < n {
		a := e2eAccount{Email: "e2e-order-" + randomHex(c.t) + "@example.com", Password: password}
		status, body, _ := c.do("POST", "/api/users", "", map[string]string{"email": a.Email, "password": a.Password, "name": "E2E Buyer"})
		if status == http.StatusTooManyRequests {
			c.t.Fatalf("sign up refused: users throttles sign-ups per client address (USERS_SIGNUP_CLIENT_MAX per USERS_SIGNUP_WINDOW), and this machine's tests and tools share 127.0.0.1; %s", body)
		}
		if status != http.StatusCreated {
			c.t.Fatalf("sign up = %d %s", status, body)
		}
		token, _ := c.login(a.Email, a.Password)
		tokens = append(tokens, token)
		live = append(live, a)
		if b, err := json.Marshal(live); err == nil {
			if err := os.WriteFile(file, b, 0o600); err != nil {
				c.t.Logf("remembering the e2e customers in %s: %v", file, err)
			}
		}
	}
	for _, token := range tokens {
		status, body, _ := c.do("PUT", "/api/me/address", token,
			map[string]string{"street": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"})
		if status != http.StatusOK {
			c.t.Fatalf("address = %d %s", status, body)
		}
	}
	return tokens
}

// customer is one customer of customers(1) and its user id.
func (c e2e) customer() (token, userID string) {
	c.t.Helper()
	token = c.customers(1)[0]
	status, body, _ := c.do("GET", "/api/me", token, nil)
	var me struct{ ID string }
	if status != http.StatusOK || json.Unmarshal(body, &me) != nil {
		c.t.Fatalf("GET /api/me = %d %s", status, body)
	}
	return token, me.ID
}

// product creates a kettle with a unique name (returned: a word search can find) and
// initialStock, and waits until inventory has its stock record.
func (c e2e) product(admin string, price, initialStock int) (id, word string) {
	c.t.Helper()
	word = "e2ek" + randomHex(c.t)
	status, body, _ := c.do("POST", "/api/products", admin, map[string]any{
		"name": "Kettle " + word, "description": "End-to-end test kettle", "category": "kettle",
		"price":      map[string]any{"amount": price, "currency": "EUR"},
		"attributes": map[string]any{"capacityMl": 1000, "material": "steel"}, "initialStock": initialStock})
	if status != http.StatusCreated {
		c.t.Fatalf("create product = %d %s", status, body)
	}
	var p struct{ ID string }
	mustDecode(c.t, body, &p)
	c.availability(p.ID, func(a availability) bool { return a.Available == initialStock && a.Reserved == 0 })
	return p.ID, word
}

type availability struct{ Available, Reserved, Version int }

// availability polls GET /api/products/{id} until its availability satisfies ok (at most
// 30 s: inventory creates and changes stock from asynchronous events and commands).
func (c e2e) availability(id string, ok func(availability) bool) availability {
	c.t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		status, body, _ := c.do("GET", "/api/products/"+id, "", nil)
		last = fmt.Sprintf("%d %s", status, body)
		var p struct{ Availability *availability }
		if status == http.StatusOK && json.Unmarshal(body, &p) == nil && p.Availability != nil && ok(*p.Availability) {
			return *p.Availability
		}
	}
	c.t.Fatalf("availability of %s never as expected; last GET /api/products/%s = %s", id, id, last)
	return availability{}
}

// restock sets the product's available stock with the version read from availability.
func (c e2e) restock(admin, id string, available int) {
	c.t.Helper()
	a := c.availability(id, func(availability) bool { return true })
	status, body, _ := c.do("PUT", "/api/products/"+id+"/stock", admin, map[string]int{"available": available, "version": a.Version})
	if status != http.StatusOK {
		c.t.Fatalf("restock %s to %d = %d %s", id, available, status, body)
	}
}

// searchInStock polls GET /api/search?q=word&inStock=true until the product is found
// (want true) or not (want false), for at most 30 s: search follows events.
func (c e2e) searchInStock(word, id string, want bool) {
	c.t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		status, body, _ := c.do("GET", "/api/search?"+url.Values{"q": {word}, "inStock": {"true"}}.Encode(), "", nil)
		last = fmt.Sprintf("%d %s", status, body)
		var res struct{ Hits []struct{ ID string } }
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
			continue
		}
		found := false
		for _, h := range res.Hits {
			found = found || h.ID == id
		}
		if found == want {
			return
		}
	}
	c.t.Fatalf("search inStock=true for %s: found != %v within 30s; last answer %s", id, want, last)
}

// faults PUTs the fault switches and clears them all at cleanup.
func (c e2e) faults(admin string, doc map[string]any) {
	c.t.Helper()
	c.t.Cleanup(func() {
		if status, body, _ := c.do("DELETE", "/api/admin/faults", admin, nil); status != http.StatusNoContent {
			c.t.Errorf("clear faults = %d %s", status, body)
		}
	})
	if status, body, _ := c.do("PUT", "/api/admin/faults", admin, doc); status != http.StatusOK {
		c.t.Fatalf("PUT faults %v = %d %s", doc, status, body)
	}
}

type orderLine struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// order is the public order shape (the parts the tests look at).
type order struct {
	ID           string
	Status       string
	CancelReason string
	Items        []struct {
		ProductID string
		Name      string
		Quantity  int
		Product   *struct{ Name string }
	}
	Total    struct{ Amount int }
	Customer *struct{ Name string }
	Payment  *struct {
		Status   string
		Amount   struct{ Amount int }
		Refunded *struct{ Amount int }
	}
	Steps    []struct{ Name, Status string }
	Degraded []string
}

// place places an order with key (see tryPlace) and fails the test if it is refused.
func (c e2e) place(token, key string, items ...orderLine) string {
	c.t.Helper()
	id, err := c.tryPlace(token, key, items...)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// tryPlace places an order with key, retrying while orders answers 422 for a missing copy
// (the user's address or the product reach orders by events, asynchronously) or sheds the
// request (503 with Retry-After: the bound of requests in flight, as a burst of 50 hits
// it), for at most 30 s, and returns the order id. It is safe to call from any goroutine.
func (c e2e) tryPlace(token, key string, items ...orderLine) (string, error) {
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		status, hdr, body, err := c.postOrderHeader(token, key, map[string]any{"items": items})
		if err != nil {
			return "", err
		}
		last = fmt.Sprintf("%d %s", status, body)
		if status == http.StatusAccepted || status == http.StatusOK {
			var o struct{ ID, Status string }
			if err := json.Unmarshal(body, &o); err != nil || o.ID == "" {
				return "", fmt.Errorf("place order (key %s): answer %s", key, body)
			}
			return o.ID, nil
		}
		shed := status == http.StatusServiceUnavailable && hdr.Get("Retry-After") != ""
		missingCopy := status == http.StatusUnprocessableEntity && (strings.Contains(string(body), `"userId"`) || strings.Contains(string(body), "productId"))
		if !shed && !missingCopy {
			break
		}
	}
	return "", fmt.Errorf("place order (key %s) = %s", key, last)
}

// postOrder POSTs /api/orders with an Idempotency-Key (none when key is empty).
func (c e2e) postOrder(token, key string, in any) (int, []byte, error) {
	status, _, body, err := c.postOrderHeader(token, key, in)
	return status, body, err
}

// postOrderHeader is postOrder with the answer's header.
func (c e2e) postOrderHeader(token, key string, in any) (int, http.Header, []byte, error) {
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", c.base+"/api/orders", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("POST /api/orders: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// getOrder reads GET /api/orders/{id}.
func (c e2e) getOrder(token, id string) (order, []byte) {
	c.t.Helper()
	status, body, _ := c.do("GET", "/api/orders/"+id, token, nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET /api/orders/%s = %d %s", id, status, body)
	}
	var o order
	mustDecode(c.t, body, &o)
	return o, body
}

// terminal polls the order until CONFIRMED or CANCELLED, for at most 60 s.
func (c e2e) terminal(token, id string) order {
	c.t.Helper()
	var body []byte
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var o order
		o, body = c.getOrder(token, id)
		if o.Status == "CONFIRMED" || o.Status == "CANCELLED" {
			return o
		}
	}
	c.t.Fatalf("order %s not terminal within 60s: %s", id, body)
	return order{}
}

// TestE2EStockAndSearch is issue 9's proof on a running platform: an admin restocks a
// product, sees its availability in GET /api/products/{id}, and finds it with
// GET /api/search?inStock=true only while it has stock.
func TestE2EStockAndSearch(t *testing.T) {
	c := newE2E(t)
	admin := c.admin()
	customer := c.customers(1)[0]
	id, word := c.product(admin, 2500, 0)

	// Indexed, but not in stock.
	c.searchInStock(word, id, false)

	// Restock: only an admin, and only with the current version.
	a := c.availability(id, func(a availability) bool { return true })
	if status, body, _ := c.do("PUT", "/api/products/"+id+"/stock", customer, map[string]int{"available": 5, "version": a.Version}); status != http.StatusForbidden {
		t.Errorf("customer restock = %d %s, want 403", status, body)
	}
	if status, body, _ := c.do("PUT", "/api/products/"+id+"/stock", admin, map[string]int{"available": 5, "version": a.Version}); status != http.StatusOK {
		t.Fatalf("restock = %d %s", status, body)
	}
	if status, body, _ := c.do("PUT", "/api/products/"+id+"/stock", admin, map[string]int{"available": 6, "version": a.Version}); status != http.StatusConflict {
		t.Errorf("restock with a stale version = %d %s, want 409", status, body)
	}
	c.availability(id, func(a availability) bool { return a.Available == 5 && a.Reserved == 0 })
	c.searchInStock(word, id, true)

	// Sold out by correction: gone from inStock=true.
	c.restock(admin, id, 0)
	c.availability(id, func(a availability) bool { return a.Available == 0 })
	c.searchInStock(word, id, false)
}

// TestE2EOrderSaga is issue 10's proof on a running platform: the saga's outcomes through
// the public API, each ending with stock and money where they should be.
func TestE2EOrderSaga(t *testing.T) {
	c := newE2E(t)
	admin := c.admin()
	accounts := c.customers(2)
	token, other := accounts[0], accounts[1]

	t.Run("confirmed", func(t *testing.T) {
		c := c.with(t)
		id, word := c.product(admin, 1000, 5)
		oid := c.place(token, "k-"+randomHex(t), orderLine{id, 2})
		o := c.terminal(token, oid)
		if o.Status != "CONFIRMED" {
			t.Fatalf("order = %+v, want CONFIRMED", o)
		}
		if o.Total.Amount != 2000 || len(o.Items) != 1 || o.Items[0].Product == nil || o.Items[0].Product.Name != "Kettle "+word ||
			o.Customer == nil || o.Customer.Name != "E2E Buyer" || o.Payment == nil || o.Payment.Status != "charged" || o.Payment.Amount.Amount != 2000 ||
			len(o.Degraded) != 0 || len(o.Steps) == 0 {
			_, body := c.getOrder(token, oid)
			t.Errorf("confirmed order composed as %s", body)
		}
		c.availability(id, func(a availability) bool { return a.Available == 3 && a.Reserved == 0 })
		// Another customer cannot see it.
		if status, body, _ := c.do("GET", "/api/orders/"+oid, other, nil); status != http.StatusNotFound {
			t.Errorf("another user's order = %d %s, want 404", status, body)
		}
	})

	t.Run("out of stock", func(t *testing.T) {
		c := c.with(t)
		id, _ := c.product(admin, 1000, 1)
		oid := c.place(token, "k-"+randomHex(t), orderLine{id, 2})
		if o := c.terminal(token, oid); o.Status != "CANCELLED" || o.CancelReason != "out_of_stock" || o.Payment != nil {
			_, body := c.getOrder(token, oid)
			t.Errorf("order = %s, want CANCELLED out_of_stock without a payment", body)
		}
		c.availability(id, func(a availability) bool { return a.Available == 1 && a.Reserved == 0 })
	})

	t.Run("declined", func(t *testing.T) {
		c := c.with(t)
		id, _ := c.product(admin, 1000, 4)
		c.faults(admin, map[string]any{"payments": map[string]any{"declineRate": 1}})
		oid := c.place(token, "k-"+randomHex(t), orderLine{id, 3})
		if o := c.terminal(token, oid); o.Status != "CANCELLED" || o.CancelReason != "payment_declined" ||
			(o.Payment != nil && o.Payment.Status != "declined") {
			_, body := c.getOrder(token, oid)
			t.Errorf("order = %s, want CANCELLED payment_declined, no charge", body)
		}
		c.availability(id, func(a availability) bool { return a.Available == 4 && a.Reserved == 0 })
	})

	t.Run("payments down: timeout", func(t *testing.T) {
		c := c.with(t)
		id, _ := c.product(admin, 1000, 4)
		c.faults(admin, map[string]any{"payments": map[string]any{"down": true}, "saga": map[string]any{"stepTimeoutMs": 2000}})
		// payments' consumers read the stored down switch about once a second
		// (PAYMENTS_FAULT_POLL, 1s) and detach then; an order placed before that would be
		// charged. Wait for the switch to act, not for an outcome.
		time.Sleep(2500 * time.Millisecond)
		oid := c.place(token, "k-"+randomHex(t), orderLine{id, 3})
		if o, body := c.getOrder(token, oid); !slices.Contains(o.Degraded, "payments") {
			t.Errorf("order while payments is down = %s, want degraded naming payments", body)
		}
		// The charge step times out; the refund (a charge may exist) waits for payments, and
		// the stock stays held meanwhile (refund before release): still PENDING.
		c.timedOut(token, oid)
		c.availability(id, func(a availability) bool { return a.Available == 1 && a.Reserved == 3 })
		// Payments comes back and handles what waited (charge and refund, in either order).
		if status, body, _ := c.do("DELETE", "/api/admin/faults", admin, nil); status != http.StatusNoContent {
			t.Fatalf("clear faults = %d %s", status, body)
		}
		if o := c.terminal(token, oid); o.Status != "CANCELLED" || o.CancelReason != "timeout" {
			_, body := c.getOrder(token, oid)
			t.Errorf("order = %s, want CANCELLED timeout", body)
		}
		c.availability(id, func(a availability) bool { return a.Available == 4 && a.Reserved == 0 })
		// No money may stay charged.
		c.moneyBack(token, oid)
	})

	t.Run("50 concurrent orders for stock 10", func(t *testing.T) {
		c := c.with(t)
		id, _ := c.product(admin, 1000, 10)
		tokens := []string{token, other}
		ids := make([]string, 50)
		errs := make([]error, 50)
		var wg sync.WaitGroup
		for i := range ids {
			key := "k-" + randomHex(t)
			wg.Go(func() { ids[i], errs[i] = c.tryPlace(tokens[i%2], key, orderLine{id, 1}) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for i, oid := range ids {
			o := c.terminal(tokens[i%2], oid)
			counts[o.Status+" "+o.CancelReason]++
		}
		if counts["CONFIRMED "] != 10 || counts["CANCELLED out_of_stock"] != 40 {
			t.Errorf("outcomes = %v, want 10 CONFIRMED and 40 CANCELLED out_of_stock", counts)
		}
		c.availability(id, func(a availability) bool { return a.Available == 0 && a.Reserved == 0 })
	})

	t.Run("same Idempotency-Key twice", func(t *testing.T) {
		c := c.with(t)
		id, _ := c.product(admin, 1000, 5)
		key := "k-" + randomHex(t)
		since := time.Now()
		first := c.place(token, key, orderLine{id, 1})
		second := c.place(token, key, orderLine{id, 1})
		if first != second {
			t.Errorf("same key placed %s and %s, want one order", first, second)
		}
		if status, body, err := c.postOrder(token, "", map[string]any{"items": []orderLine{{id, 1}}}); err != nil || status != http.StatusBadRequest {
			t.Errorf("without Idempotency-Key = %d %s, want 400", status, body)
		}
		c.terminal(token, first)
		// The customer's orders placed since: exactly this one.
		status, body, _ := c.do("GET", "/api/orders?limit=20", token, nil)
		var page struct {
			Items []struct {
				ID        string
				CreatedAt time.Time
			}
		}
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET /api/orders = %d %s", status, body)
		}
		var placed []string
		for _, o := range page.Items {
			if !o.CreatedAt.Before(since) {
				placed = append(placed, o.ID)
			}
		}
		if len(placed) != 1 || placed[0] != first {
			t.Errorf("orders placed since the first POST = %v, want only %s", placed, first)
		}
		c.availability(id, func(a availability) bool { return a.Available == 4 && a.Reserved == 0 })
	})
}

// timedOut polls the order until one of its steps has timed out, for at most 30 s.
func (c e2e) timedOut(token, id string) {
	c.t.Helper()
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var o order
		o, body = c.getOrder(token, id)
		if slices.ContainsFunc(o.Steps, func(s struct{ Name, Status string }) bool { return s.Status == "timed_out" }) {
			if o.Status != "PENDING" {
				c.t.Errorf("order %s is %s while payments is down, want PENDING until the refund is settled: %s", id, o.Status, body)
			}
			return
		}
	}
	c.t.Fatalf("no step of order %s timed out within 30s: %s", id, body)
}

// with is c reporting to t (a subtest).
func (c e2e) with(t *testing.T) e2e { c.t = t; return c }

// moneyBack polls the order until payments answers and shows no charge kept: no payment,
// a declined one, or one refunded in full; it must hold for 3 reads in a row, 1 s apart
// (a late charge is refunded by orders, which can take a moment).
func (c e2e) moneyBack(token, id string) {
	c.t.Helper()
	settled := 0
	var body []byte
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && settled < 3; time.Sleep(time.Second) {
		var o order
		o, body = c.getOrder(token, id)
		p := o.Payment
		switch {
		case slices.Contains(o.Degraded, "payments"):
			settled = 0
		case p == nil || p.Status == "declined" || (p.Status == "refunded" && p.Refunded != nil && p.Refunded.Amount == p.Amount.Amount):
			settled++
		default:
			settled = 0
		}
	}
	if settled < 3 {
		c.t.Errorf("money not back for order %s: %s", id, body)
	}
}
