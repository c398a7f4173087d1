// Package gwclient is the small client of the gateway's public API that the tools (chaos,
// orderbench) use as a person would: JSON in, JSON out, a bearer token.
package gwclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Client calls the gateway at Base with HC.
type Client struct {
	Base string
	HC   *http.Client
}

// Call sends in as JSON (when not nil) with token as a bearer token (when not empty) and
// the extra headers, and decodes a 2xx answer into out (when not nil). Any other status is
// an error carrying the body; the status is returned either way (0 when nothing answered).
func (c Client) Call(ctx context.Context, method, path, token string, hdr map[string]string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Login starts a session and returns its token.
func (c Client) Login(ctx context.Context, email, password string) (string, error) {
	var out struct{ Token string }
	_, err := c.Call(ctx, "POST", "/api/sessions", "", nil, map[string]string{"email": email, "password": password}, &out)
	return out.Token, err
}

// RandomHex returns 12 random hex digits, for unique names.
func RandomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
