package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"polyshop/services/gateway/internal/eventhub"
	"polyshop/shared/httpx"
)

// The consistency console's read-only operator endpoints (admin). Each gathers what the
// owners already expose — their internal operator APIs, /readyz and /metrics — and what
// JetStream tells the gateway's own NATS user (stream and consumer info). Nothing here
// changes state. An owner that does not answer in time is named in "degraded".

// registerConsole adds the /api/admin/... console endpoints.
func (a *API) registerConsole(mux *http.ServeMux) {
	mux.Handle("GET /api/admin/sagas", a.requireAdmin(a.consoleSagas))
	mux.Handle("GET /api/admin/orders", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		q := url.Values{}
		for _, k := range []string{"status", "cursor", "limit", "userId"} {
			if v, ok := r.URL.Query()[k]; ok {
				q[k] = v
			}
		}
		ans, err := a.send(r.Context(), http.MethodGet, a.up.Orders, "/orders?"+q.Encode(), nil, nil)
		if err != nil {
			return err
		}
		writeRaw(w, ans)
		return nil
	}))
	mux.Handle("GET /api/admin/broker", a.requireAdmin(a.consoleBroker))
	mux.Handle("GET /api/admin/drift", a.requireAdmin(func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		ans, err := a.send(r.Context(), http.MethodGet, a.up.Search, "/admin/drift", nil, nil)
		if err != nil {
			return err
		}
		writeRaw(w, ans)
		return nil
	}))
	mux.Handle("GET /api/admin/health", a.requireAdmin(a.consoleHealth))
	mux.Handle("GET /api/admin/outbox", a.requireAdmin(a.consoleOutbox))
	mux.Handle("GET /api/admin/datamap", a.requireAdmin(a.consoleDataMap))
}

// DefaultStuckAfter is how long a saga may stay PENDING before the console calls it stuck.
const DefaultStuckAfter = 30 * time.Second

// consoleSagas answers GET /api/admin/sagas?stuckAfter=30s: orders' saga counts by state and
// its oldest pending saga, plus the newest page of PENDING orders (with their steps), each
// marked stuck when older than stuckAfter.
func (a *API) consoleSagas(w http.ResponseWriter, r *http.Request, _ Principal) error {
	stuckAfter := DefaultStuckAfter
	if s := r.URL.Query().Get("stuckAfter"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return httpx.BadRequest("Invalid stuckAfter.", httpx.FieldError{Field: "stuckAfter", Reason: "must be a positive duration such as 30s"})
		}
		stuckAfter = d
	}
	var sagas struct {
		Counts        map[string]int  `json:"counts"`
		OldestPending json.RawMessage `json:"oldestPending"`
	}
	if err := a.getJSON(r.Context(), a.up.Orders, "/sagas", &sagas); err != nil {
		return err
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := a.getJSON(r.Context(), a.up.Orders, "/orders?status=PENDING&limit=50", &page); err != nil {
		return err
	}
	now := time.Now()
	stuck := 0
	for _, o := range page.Items {
		created, _ := time.Parse(time.RFC3339Nano, asString(o["createdAt"]))
		age := now.Sub(created)
		o["ageSeconds"] = int(age.Seconds())
		o["stuck"] = age > stuckAfter
		if age > stuckAfter {
			stuck++
		}
		delete(o, "shippingAddress") // the console needs states, not addresses
	}
	if page.Items == nil {
		page.Items = []map[string]any{}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"counts": sagas.Counts, "oldestPending": sagas.OldestPending, "pending": page.Items,
		"stuck": stuck, "stuckAfterSeconds": int(stuckAfter.Seconds()),
	})
}

func asString(v any) string { s, _ := v.(string); return s }

// StreamReport is one JetStream stream as the console shows it.
type StreamReport struct {
	Name      string           `json:"name"`
	DLQ       bool             `json:"dlq"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"firstSeq"`
	LastSeq   uint64           `json:"lastSeq"`
	LastTime  *time.Time       `json:"lastTime,omitempty"`
	Consumers []ConsumerReport `json:"consumers"`
}

// ConsumerReport is one consumer's lag: NumPending is not yet delivered, NumAckPending
// delivered and not yet acknowledged, Redelivered delivered more than once and unacked.
type ConsumerReport struct {
	Name           string     `json:"name"`
	Durable        bool       `json:"durable"`
	FilterSubjects []string   `json:"filterSubjects,omitempty"`
	NumPending     uint64     `json:"numPending"`
	NumAckPending  int        `json:"numAckPending"`
	NumRedelivered int        `json:"numRedelivered"`
	NumWaiting     int        `json:"numWaiting"`
	DeliveredSeq   uint64     `json:"deliveredSeq"`
	AckFloorSeq    uint64     `json:"ackFloorSeq"`
	LastActive     *time.Time `json:"lastActive,omitempty"`
}

// consoleBroker answers GET /api/admin/broker: every stream (owner streams and DLQ_*
// dead-letter streams) with its message counts and every consumer's lag.
func (a *API) consoleBroker(w http.ResponseWriter, r *http.Request, _ Principal) error {
	streams, err := a.brokerReport(r.Context())
	if err != nil {
		return err
	}
	dlq := map[string]uint64{}
	for _, s := range streams {
		if s.DLQ {
			dlq[s.Name] = s.Messages
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"streams": streams, "dlqDepth": dlq})
}

func (a *API) brokerReport(ctx context.Context) ([]StreamReport, error) {
	if a.ops.js == nil {
		return nil, httpx.Unavailable("The console's broker view is not configured: the gateway has no NATS connection (GATEWAY_NATS_URL).")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out []StreamReport
	lister := a.ops.js.ListStreams(ctx)
	for info := range lister.Info() {
		s := StreamReport{Name: info.Config.Name, DLQ: strings.HasPrefix(info.Config.Name, "DLQ_"),
			Messages: info.State.Msgs, Bytes: info.State.Bytes, FirstSeq: info.State.FirstSeq,
			LastSeq: info.State.LastSeq, Consumers: []ConsumerReport{}}
		if !info.State.LastTime.IsZero() {
			t := info.State.LastTime
			s.LastTime = &t
		}
		out = append(out, s)
	}
	if err := lister.Err(); err != nil {
		return nil, a.brokerUnavailable(err)
	}
	for i := range out {
		st, err := a.ops.js.Stream(ctx, out[i].Name)
		if err != nil {
			return nil, a.brokerUnavailable(err)
		}
		cl := st.ListConsumers(ctx)
		for c := range cl.Info() {
			cr := ConsumerReport{Name: c.Name, Durable: c.Config.Durable != "", NumPending: c.NumPending,
				NumAckPending: c.NumAckPending, NumRedelivered: c.NumRedelivered, NumWaiting: c.NumWaiting,
				DeliveredSeq: c.Delivered.Stream, AckFloorSeq: c.AckFloor.Stream}
			cr.FilterSubjects = c.Config.FilterSubjects
			if c.Config.FilterSubject != "" {
				cr.FilterSubjects = append(cr.FilterSubjects, c.Config.FilterSubject)
			}
			if c.Delivered.Last != nil {
				cr.LastActive = c.Delivered.Last
			}
			out[i].Consumers = append(out[i].Consumers, cr)
		}
		if err := cl.Err(); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, a.brokerUnavailable(err)
		}
		slices.SortFunc(out[i].Consumers, func(x, y ConsumerReport) int {
			if x.Durable != y.Durable {
				if x.Durable {
					return -1
				}
				return 1
			}
			return strings.Compare(x.Name, y.Name)
		})
	}
	slices.SortFunc(out, func(x, y StreamReport) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

func (a *API) brokerUnavailable(err error) error {
	a.log.Warn("jetstream info", "err", err)
	e := httpx.Unavailable("NATS JetStream does not answer; try again shortly.")
	e.Headers = http.Header{"Retry-After": {"1"}}
	return e
}

// serviceInfo is what the console knows statically about each service.
type serviceInfo struct {
	Name, Engine, Owns, Stream string
	base                       func(a *API) string
}

var consoleServices = []serviceInfo{
	{"users", "PostgreSQL", "users, addresses", "USERS", func(a *API) string { return a.up.Users }},
	{"sessions", "Redis", "sessions, login throttling", "SESSIONS", func(a *API) string { return a.up.Sessions }},
	{"catalog", "MongoDB (FerretDB natively)", "products, categories", "CATALOG", func(a *API) string { return a.up.Catalog }},
	{"inventory", "PostgreSQL", "stock levels, reservations", "INVENTORY", func(a *API) string { return a.up.Inventory }},
	{"orders", "PostgreSQL", "orders, saga state, address copy", "ORDERS", func(a *API) string { return a.up.Orders }},
	{"payments", "PostgreSQL", "charges, refunds", "PAYMENTS", func(a *API) string { return a.up.Payments }},
	{"activity", "Cassandra", "activity feeds (read model)", "", func(a *API) string { return a.up.Activity }},
	{"search", "Elasticsearch", "product search index (read model)", "", func(a *API) string { return a.up.Search }},
}

// serviceHealth is one service's /readyz answer.
type serviceHealth struct {
	Name      string          `json:"name"`
	Engine    string          `json:"engine"`
	Status    string          `json:"status"` // ok, not_ready, unreachable
	LatencyMs int64           `json:"latencyMs"`
	Checks    json.RawMessage `json:"checks,omitempty"`
}

// consoleHealth answers GET /api/admin/health: every service's /readyz (its engine and
// broker checks), asked in parallel under the compose deadline, and the gateway's own
// broker connection.
func (a *API) consoleHealth(w http.ResponseWriter, r *http.Request, _ Principal) error {
	out := a.health(r.Context())
	gw := serviceHealth{Name: "gateway", Engine: "—", Status: "ok"}
	if a.ops.js == nil {
		gw.Status = "not_ready"
		gw.Checks = json.RawMessage(`{"nats":{"status":"not configured"}}`)
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), a.composeTimeout)
		_, err := a.ops.js.AccountInfo(ctx)
		cancel()
		gw.Checks = json.RawMessage(`{"nats":{"status":"ok"}}`)
		if err != nil {
			gw.Status = "not_ready"
			b, _ := json.Marshal(map[string]any{"nats": map[string]string{"status": "error", "error": err.Error()}})
			gw.Checks = b
		}
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"services": append([]serviceHealth{gw}, out...)})
}

func (a *API) health(ctx context.Context) []serviceHealth {
	out := make([]serviceHealth, len(consoleServices))
	var wg sync.WaitGroup
	for i, s := range consoleServices {
		wg.Go(func() {
			h := serviceHealth{Name: s.Name, Engine: s.Engine}
			ctx, cancel := context.WithTimeout(ctx, a.composeTimeout)
			defer cancel()
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.base(a), "/")+"/readyz", nil)
			resp, err := a.client.Do(req)
			h.LatencyMs = time.Since(t0).Milliseconds()
			switch {
			case err != nil:
				h.Status = "unreachable"
			default:
				var body struct {
					Checks json.RawMessage `json:"checks"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				h.Checks = body.Checks
				h.Status = "ok"
				if resp.StatusCode != http.StatusOK {
					h.Status = "not_ready"
				}
			}
			out[i] = h
		})
	}
	wg.Wait()
	return out
}

// consoleOutbox answers GET /api/admin/outbox: per owner, the outbox and relay metrics it
// publishes on /metrics (every sample whose name contains "outbox"), and its parked
// messages from GET /admin/outbox/parked where the owner has that route. What an owner
// does not expose is reported as missing, not guessed.
func (a *API) consoleOutbox(w http.ResponseWriter, r *http.Request, _ Principal) error {
	owners := []serviceInfo{}
	for _, s := range consoleServices {
		if s.Stream != "" {
			owners = append(owners, s)
		}
	}
	type report struct {
		Service string             `json:"service"`
		Metrics map[string]float64 `json:"metrics"`
		Parked  json.RawMessage    `json:"parked,omitempty"`
		Missing []string           `json:"missing,omitempty"`
	}
	out := make([]report, len(owners))
	var wg sync.WaitGroup
	for i, s := range owners {
		wg.Go(func() {
			rep := report{Service: s.Name, Metrics: map[string]float64{}}
			m, err := a.scrape(r.Context(), s.base(a), "outbox")
			switch {
			case err != nil:
				rep.Missing = append(rep.Missing, "metrics: "+err.Error())
			case len(m) == 0:
				rep.Missing = append(rep.Missing, "metrics: no outbox metric on /metrics")
			default:
				rep.Metrics = m
			}
			var parked json.RawMessage
			if err := a.part(r.Context(), s.base(a), "/admin/outbox/parked", &parked); err != nil {
				rep.Missing = append(rep.Missing, "GET /admin/outbox/parked")
			} else {
				rep.Parked = parked
			}
			out[i] = rep
		})
	}
	wg.Wait()
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{"owners": out})
}

// scrape reads base's /metrics under the compose deadline and returns the samples whose
// metric name contains substr (name with labels → value).
func (a *API) scrape(ctx context.Context, base, substr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, a.composeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, errors.New("unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		if bare, _, _ := strings.Cut(name, "{"); !strings.Contains(bare, substr) {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// notCounted names the services whose records the data map does not count, and why.
var notCounted = map[string]string{
	"activity": "not counted: a full table scan in Cassandra",
	"sessions": "not counted: sessions expire by TTL in Redis with no global index, so counting them is a SCAN of the keyspace",
}

// consoleDataMap answers GET /api/admin/datamap: each service with its engine, what it owns,
// the record counts its owner exposes (GET /admin/stats of the shared operator API where the
// owner counts, orders' saga counts, search's drift counts), its stream's size and last event.
func (a *API) consoleDataMap(w http.ResponseWriter, r *http.Request, _ Principal) error {
	ctx := r.Context()
	var (
		wg      sync.WaitGroup
		d       degraded
		sagas   struct{ Counts map[string]int }
		drift   struct{ CatalogProducts, IndexedProducts *int }
		streams []StreamReport
	)
	wg.Go(func() {
		if err := a.part(ctx, a.up.Orders, "/sagas", &sagas); err != nil {
			a.missing(ctx, &d, "orders", err)
		}
	})
	wg.Go(func() {
		if err := a.part(ctx, a.up.Search, "/admin/drift", &drift); err != nil {
			a.missing(ctx, &d, "search", err)
		}
	})
	wg.Go(func() {
		var err error
		if streams, err = a.brokerReport(ctx); err != nil {
			a.missing(ctx, &d, "nats", err)
		}
	})
	stats := make([]map[string]int64, len(consoleServices))
	statsErr := make([]error, len(consoleServices))
	for i, s := range consoleServices {
		if notCounted[s.Name] != "" {
			continue
		}
		wg.Go(func() {
			var body struct{ Records map[string]int64 }
			if err := a.part(ctx, s.base(a), "/admin/stats", &body); err != nil {
				statsErr[i] = err
			} else {
				stats[i] = body.Records
			}
		})
	}
	health := a.health(ctx)
	wg.Wait()

	var last map[string]*eventhub.Event
	if a.ops.hub != nil {
		last = a.ops.hub.Last()
	}
	type entry struct {
		Service    string          `json:"service"`
		Engine     string          `json:"engine"`
		Owns       string          `json:"owns"`
		Status     string          `json:"status"`
		Records    map[string]int  `json:"records"`
		NotExposed []string        `json:"notExposed,omitempty"`
		Stream     *StreamReport   `json:"stream,omitempty"`
		LastEvent  *eventhub.Event `json:"lastEvent,omitempty"`
	}
	var out []entry
	for i, s := range consoleServices {
		e := entry{Service: s.Name, Engine: s.Engine, Owns: s.Owns, Status: health[i].Status, Records: map[string]int{}}
		switch s.Name {
		case "orders":
			if sagas.Counts != nil {
				total := 0
				for _, n := range sagas.Counts {
					total += n
				}
				e.Records["orders"] = total
			} else {
				e.NotExposed = append(e.NotExposed, "orders (GET /sagas did not answer)")
			}
		case "catalog":
			if drift.CatalogProducts != nil {
				e.Records["products"] = *drift.CatalogProducts
			} else {
				e.NotExposed = append(e.NotExposed, "products (counted by search's GET /admin/drift, which did not answer)")
			}
		case "search":
			if drift.IndexedProducts != nil {
				e.Records["indexed products"] = *drift.IndexedProducts
			}
		}
		for k, n := range stats[i] {
			e.Records[k] = int(n)
		}
		if why := notCounted[s.Name]; why != "" {
			e.NotExposed = append(e.NotExposed, why)
		}
		if err := statsErr[i]; err != nil && !isStatus(err, http.StatusNotFound) {
			e.NotExposed = append(e.NotExposed, "record counts (GET /admin/stats did not answer)")
		}
		if len(e.Records) == 0 && len(e.NotExposed) == 0 {
			e.NotExposed = append(e.NotExposed, "record counts: the service has no operator API that counts its records")
		}
		for j := range streams {
			if streams[j].Name == s.Stream {
				st := streams[j]
				st.Consumers = nil
				e.Stream = &st
				e.Records["events in stream"] = int(st.Messages)
			}
		}
		if ev := last[s.Stream]; ev != nil {
			e.LastEvent = ev
		}
		out = append(out, e)
	}
	ans := map[string]any{"services": out}
	if names := d.list(); names != nil {
		ans["degraded"] = names
	}
	return httpx.WriteJSON(w, http.StatusOK, ans)
}
