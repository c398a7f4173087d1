package labs

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"polyshop/infra/checks/internal/audit"
	"polyshop/infra/checks/internal/gwclient"
)

// Helpers shared by the labs: products, orders and the facts the auditor checks.

// CreateProduct creates a coffee product with an initial stock through the admin API and
// returns its id; the lab keeps it under key (Set) so Reset can delete it.
func (e *Env) CreateProduct(ctx context.Context, key, name string, stock int) (string, error) {
	body := map[string]any{
		"name": name, "category": "coffee", "price": map[string]any{"amount": 1250, "currency": "EUR"},
		"attributes":   map[string]any{"origin": "Lab", "roast": "medium", "weightG": 250},
		"initialStock": stock,
	}
	var p struct {
		ID string `json:"id"`
	}
	if _, err := e.AdminCall(ctx, "POST", "/api/products", body, &p); err != nil {
		return "", fmt.Errorf("creating product %q: %w", name, err)
	}
	e.Set(key, p.ID)
	// Orders and inventory learn of a product from catalog's events.
	err := Eventually(ctx, 60*time.Second, "product "+name+" known to inventory", func() (bool, error) {
		var s struct {
			Available int `json:"available"`
		}
		_, err := e.Owner(ctx, "inventory", "GET", "/stock/"+url.PathEscape(p.ID), nil, &s)
		return err == nil && s.Available == stock, err
	})
	return p.ID, err
}

// DeleteProduct deletes the product noted under key, if any (404: already gone).
func (e *Env) DeleteProduct(ctx context.Context, key string) error {
	id := e.Get(key)
	if id == "" {
		return nil
	}
	code, err := e.AdminCall(ctx, "DELETE", "/api/products/"+url.PathEscape(id), nil, nil)
	if err != nil && code != 404 {
		return err
	}
	delete(e.st.Values, key)
	return nil
}

// OrderLine is one line of an order to place.
type OrderLine struct {
	ProductID string `json:"productId"`
	Quantity  int    `json:"quantity"`
}

// PlaceOrder places an order as the named user through the public API and returns its id.
func (e *Env) PlaceOrder(ctx context.Context, user string, lines ...OrderLine) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	hdr := map[string]string{"Idempotency-Key": "lab-" + gwclient.RandomHex()}
	var err error
	// The address copy reaches orders by events a moment after it is set.
	err = Eventually(ctx, 60*time.Second, "placing an order", func() (bool, error) {
		code, err := e.UserCall(ctx, user, "POST", "/api/orders", hdr, map[string]any{"items": lines}, &out)
		if code == 422 {
			return false, err
		}
		if err != nil {
			return false, err
		}
		return true, nil
	})
	return out.ID, err
}

// SetAddress gives the named user a shipping address (needed to order).
func (e *Env) SetAddress(ctx context.Context, user string) error {
	addr := map[string]string{"street": "Lab Street 1", "city": "Labtown", "postalCode": "1000-001", "country": "PT"}
	_, err := e.UserCall(ctx, user, "PUT", "/api/me/address", nil, addr, nil)
	return err
}

// Order is the part of an order the labs read.
type Order struct {
	ID           string `json:"id"`
	UserID       string `json:"userId"`
	Status       string `json:"status"`
	CancelReason string `json:"cancelReason"`
	Steps        []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"steps"`
}

// UserOrders lists the named user's orders (newest first) through the public API.
func (e *Env) UserOrders(ctx context.Context, user string) ([]Order, error) {
	var page struct {
		Items []Order `json:"items"`
	}
	_, err := e.UserCall(ctx, user, "GET", "/api/orders?limit=100", nil, nil, &page)
	return page.Items, err
}

// OrderFacts reads an order, its payments and its reservations from the owners, as the
// auditor does, and returns them with the auditor's verdict on the order.
func (e *Env) OrderFacts(ctx context.Context, orderID string) (audit.Facts, []audit.Violation, error) {
	var f audit.Facts
	q := url.QueryEscape(orderID)
	if _, err := e.Owner(ctx, "orders", "GET", "/orders/"+url.PathEscape(orderID), nil, &f.Order); err != nil {
		return f, nil, err
	}
	var ps struct{ Items []audit.Payment }
	if _, err := e.Owner(ctx, "payments", "GET", "/payments?orderId="+q, nil, &ps); err != nil {
		return f, nil, err
	}
	var rs struct{ Items []audit.Reservation }
	if _, err := e.Owner(ctx, "inventory", "GET", "/reservations?orderId="+q, nil, &rs); err != nil {
		return f, nil, err
	}
	f.Payments, f.Reservations = ps.Items, rs.Items
	return f, audit.CheckOrder(f, time.Now(), 2*time.Minute), nil
}

// WaitOrder waits until the order is CONFIRMED or CANCELLED.
func (e *Env) WaitOrder(ctx context.Context, user, orderID string, timeout time.Duration) (Order, error) {
	var o Order
	err := Eventually(ctx, timeout, "order "+orderID+" to finish", func() (bool, error) {
		_, err := e.UserCall(ctx, user, "GET", "/api/orders/"+url.PathEscape(orderID), nil, nil, &o)
		return err == nil && (o.Status == "CONFIRMED" || o.Status == "CANCELLED"), err
	})
	return o, err
}
