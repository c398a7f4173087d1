// Command dlq works on a running platform's dead letters and parked outbox events through
// each service's operator API (shared/admin), on the loopback addresses of infra/local.env
// (<SERVICE>_HTTP_ADDR). Replay goes through the service because only the consuming
// service's handler can apply a letter (see shared/broker/replay.go).
//
//	dlq list [service...]            dead letters per service, with their reason (default: every consuming service)
//	dlq show <service> <seq>         one letter, its headers and body
//	dlq replay <service> <seq>       hand the letter to the consumer that gave up on it; deleted once applied
//	dlq drop <service> <seq>         delete the letter without applying it
//	dlq parked [service...]          parked outbox events (default: every service with an outbox)
//	dlq rearm <service> <event-id>   let the relay try a parked event (and its aggregate) again
//
// Exit status: 0 done, 1 the service refused or failed (its problem is printed), 2 usage.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"polyshop/infra/checks/internal/gwclient"
)

var (
	consumers = []string{"users", "sessions", "catalog", "inventory", "orders", "payments", "activity", "search"}
	outboxes  = []string{"users", "sessions", "catalog", "inventory", "orders", "payments"}
	defaults  = map[string]string{
		"users": "127.0.0.1:8081", "sessions": "127.0.0.1:8082", "catalog": "127.0.0.1:8083", "inventory": "127.0.0.1:8084",
		"orders": "127.0.0.1:8085", "payments": "127.0.0.1:8086", "activity": "127.0.0.1:8087", "search": "127.0.0.1:8088",
	}
	client = &http.Client{Timeout: 30 * time.Second}
)

const usage = `usage: dlq list [service...] | show <service> <seq> | replay <service> <seq> | drop <service> <seq>
           | parked [service...] | rearm <service> <event-id>`

func main() {
	// The operator API is internal: the operator identity (mutual TLS when POLYSHOP_TLS=on).
	client = gwclient.MustOperatorClient(nil, 30*time.Second)
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dlq:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (u usageError) Error() string { return string(u) + "\n" + usage }

func base(service string) (string, error) {
	def, ok := defaults[service]
	if !ok {
		return "", usageError("unknown service " + service)
	}
	return gwclient.InternalURL(nil, service, def), nil
}

// do calls the service and decodes a JSON answer into out (when not nil); an error
// status becomes an error carrying the problem's detail.
func do(service, method, path string, out any) error {
	b, err := base(service)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, b+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w (is it running?)", service, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode >= 400 {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(body, &p)
		if p.Detail == "" {
			p.Detail = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%s: %s %s: %d %s", service, method, path, resp.StatusCode, p.Detail)
	}
	if out != nil && len(body) > 0 {
		return json.Unmarshal(body, out)
	}
	return nil
}

type letter struct {
	Seq        uint64          `json:"seq"`
	Subject    string          `json:"subject"`
	Consumer   string          `json:"consumer"`
	Reason     string          `json:"reason"`
	Deliveries int             `json:"deliveries"`
	EventID    string          `json:"eventId"`
	Time       time.Time       `json:"deadLetteredAt"`
	Data       json.RawMessage `json:"data"`
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "list":
		services := rest
		if len(services) == 0 {
			services = consumers
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SERVICE\tSEQ\tWHEN\tCONSUMER\tSUBJECT\tDELIVERIES\tREASON")
		var failed []string
		for _, s := range services {
			after := uint64(0)
			for {
				var page struct {
					Items     []letter `json:"items"`
					NextAfter *uint64  `json:"nextAfter"`
				}
				if err := do(s, "GET", fmt.Sprintf("/admin/dlq?limit=1000&after=%d", after), &page); err != nil {
					if errors.As(err, new(usageError)) {
						return err
					}
					failed = append(failed, err.Error())
					break
				}
				for _, l := range page.Items {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%d\t%s\n", s, l.Seq, l.Time.Format(time.RFC3339), l.Consumer, l.Subject, l.Deliveries, l.Reason)
				}
				if page.NextAfter == nil {
					break
				}
				after = *page.NextAfter
			}
		}
		w.Flush()
		if len(failed) > 0 {
			return errors.New(strings.Join(failed, "; "))
		}
		return nil
	case "show", "replay", "drop":
		if len(rest) != 2 {
			return usageError(cmd + " needs <service> <seq>")
		}
		s, seq := rest[0], rest[1]
		var v any
		var err error
		switch cmd {
		case "show":
			err = do(s, "GET", "/admin/dlq/"+seq, &v)
		case "replay":
			err = do(s, "POST", "/admin/dlq/"+seq+"/replay", &v)
		case "drop":
			err = do(s, "DELETE", "/admin/dlq/"+seq, nil)
			v = map[string]any{"dropped": seq}
		}
		if err != nil {
			return err
		}
		return printJSON(out, v)
	case "parked":
		services := rest
		if len(services) == 0 {
			services = outboxes
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SERVICE\tEVENT\tAGGREGATE\tTYPE\tATTEMPTS\tPARKED\tLAST ERROR")
		var failed []string
		for _, s := range services {
			var page struct {
				Items []struct {
					ID, Aggregate, Type, LastError string
					Attempts                       int
					ParkedAt                       time.Time
				} `json:"items"`
			}
			if err := do(s, "GET", "/admin/outbox/parked?limit=1000", &page); err != nil {
				if errors.As(err, new(usageError)) {
					return err
				}
				failed = append(failed, err.Error())
				continue
			}
			for _, p := range page.Items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s, p.ID, p.Aggregate, p.Type, p.Attempts, p.ParkedAt.Format(time.RFC3339), p.LastError)
			}
		}
		w.Flush()
		if len(failed) > 0 {
			return errors.New(strings.Join(failed, "; "))
		}
		return nil
	case "rearm":
		if len(rest) != 2 {
			return usageError("rearm needs <service> <event-id>")
		}
		if err := do(rest[0], "POST", "/admin/outbox/parked/"+rest[1]+"/rearm", nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "re-armed %s in %s\n", rest[1], rest[0])
		return nil
	case "-h", "help", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return usageError("unknown command " + cmd)
}

func printJSON(out io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := out.Write(buf.Bytes())
	return err
}
