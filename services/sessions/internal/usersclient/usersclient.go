// Package usersclient checks credentials with the users service's internal API
// (POST /credentials/verify); it implements sessions.Verifier.
package usersclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"polyshop/services/sessions/internal/sessions"
	"polyshop/shared/httpx"
)

// Client calls the users service at a base URL. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
}

var _ sessions.Verifier = (*Client)(nil)

// New returns a Client for the users service at base (such as http://127.0.0.1:8081).
func New(base string, hc *http.Client) *Client {
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// Verify implements sessions.Verifier.
func (c *Client) Verify(ctx context.Context, email, password string) (string, string, error) {
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return "", "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/credentials/verify", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", sessions.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var out struct {
			UserID string `json:"userId"`
			Role   string `json:"role"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.UserID == "" {
			return "", "", fmt.Errorf("users service: malformed credentials answer: %v", err)
		}
		return out.UserID, out.Role, nil
	case http.StatusUnauthorized:
		return "", "", sessions.ErrBadCredentials
	default:
		return "", "", fmt.Errorf("%w: verify credentials: %v", sessions.ErrUnavailable, httpx.ReadProblem(resp))
	}
}
