package labs

import (
	"net/http"
	"strconv"
	"time"
)

// retryTransport retries a request that a service shed (503 or 429 with Retry-After: the
// in-flight bound of httpx.Shed, the gateway's capacity) a few times, so that a lab does
// not fail on a busy machine for a request that would succeed a second later.
type retryTransport struct {
	base http.RoundTripper
}

func withRetry(hc *http.Client) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = retryTransport{base: base}
	return &c
}

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		if err != nil || attempt == 5 || (resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests) {
			return resp, err
		}
		after, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
		if perr != nil || after > 5 {
			return resp, nil // not shed load: a service that is down, or a long throttle
		}
		if req.Body != nil {
			if req.GetBody == nil {
				return resp, nil
			}
			body, err := req.GetBody()
			if err != nil {
				return resp, nil
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp.Body.Close()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(time.Duration(max(after, 1)) * time.Second):
		}
	}
}
