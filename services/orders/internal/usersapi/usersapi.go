// Package usersapi reads a customer's current shipping address from users' internal API
// (GET /users/{id}): orders' sync address source, used only while the lab pattern switch
// orders.addressCopy is sync.
package usersapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"polyshop/services/orders/internal/orders"
)

// Reader returns an orders.AddressSource Read function over users at base (USERS_URL),
// with hc (the service's client, with its certificate under mutual TLS) and a timeout per
// read. 200 gives the user's address (nil when none is set), 404 nil (unknown or deleted
// user: the order is refused 422 userId as with the local copy); anything else, a timeout
// or a refused connection wraps orders.ErrUsersUnavailable.
func Reader(hc *http.Client, base string, timeout time.Duration) func(ctx context.Context, userID string) (*orders.Address, error) {
	return func(ctx context.Context, userID string) (*orders.Address, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/users/"+url.PathEscape(userID), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", orders.ErrUsersUnavailable, err)
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil, nil
		default:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			return nil, fmt.Errorf("%w: GET /users/{id} answered %d", orders.ErrUsersUnavailable, resp.StatusCode)
		}
		var u struct {
			Address *orders.Address `json:"address"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&u); err != nil {
			return nil, fmt.Errorf("%w: decode user: %v", orders.ErrUsersUnavailable, err)
		}
		return u.Address, nil
	}
}
