package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"polyshop/shared/httpx"
)

// DefaultComposeTimeout is how long a composed answer waits for each secondary dependency
// (inventory's availability of a product; the customer, products and payment of an order;
// each owner's fault switches) before leaving its part out and naming it in "degraded".
const DefaultComposeTimeout = time.Second

// WithComposeTimeout sets the per-call deadline of the secondary parts of composed answers
// (DefaultComposeTimeout when not set or not positive).
func WithComposeTimeout(d time.Duration) Option {
	return func(a *API) {
		if d > 0 {
			a.composeTimeout = d
		}
	}
}

// degraded collects the names of the services whose part of a composed answer is missing.
// It is safe for concurrent use.
type degraded struct {
	mu    sync.Mutex
	names []string
}

func (d *degraded) add(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.names, name) {
		d.names = append(d.names, name)
	}
}

// list returns the names sorted, or nil when nothing is missing (so omitempty drops it).
func (d *degraded) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.names) == 0 {
		return nil
	}
	out := slices.Clone(d.names)
	slices.Sort(out)
	return out
}

// part GETs base+path into v under the compose deadline. Errors as getJSON: an upstream
// answer ≥ 400 is an *httpx.Error, no answer (the deadline included) a 503 *httpx.Error.
func (a *API) part(ctx context.Context, base, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, a.composeTimeout)
	defer cancel()
	return a.getJSON(ctx, base, path, v)
}

// missing records that the part of service is left out of a composed answer, and logs why.
func (a *API) missing(ctx context.Context, d *degraded, service string, err error) {
	d.add(service)
	a.log.WarnContext(ctx, "composed answer degraded", "dependency", service, "err", err)
}

// isStatus reports whether err is an upstream answer with the given status.
func isStatus(err error, status int) bool {
	var he *httpx.Error
	return errors.As(err, &he) && he.Status == status
}

// answer is an upstream's successful HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send sends in (when not nil) as JSON with hdr to base+path and reads a 2xx answer whole
// (at most 4 MiB). An answer ≥ 400 is returned as an *httpx.Error (so it passes through),
// no answer as a 503 naming the upstream.
func (a *API) send(ctx context.Context, method, base, path string, hdr http.Header, in any) (answer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return answer{}, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	url := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return answer{}, a.unavailable(base, err)
	}
	defer resp.Body.Close()
	if perr := httpx.ReadProblem(resp); perr != nil {
		return answer{}, perr
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return answer{}, a.unavailable(base, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// writeRaw writes an upstream's JSON answer as it is.
func writeRaw(w http.ResponseWriter, ans answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.body)
}

// principalHeaders are the headers that tell an owner who the caller is.
func principalHeaders(p Principal) http.Header {
	return http.Header{HeaderUserID: {p.UserID}, HeaderUserRole: {p.Role}}
}
