package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/activity/internal/activity"
	"polyshop/services/activity/internal/activity/activitytest"
	"polyshop/services/activity/internal/cqlstore/cqltest"
	"polyshop/services/activity/internal/httpapi"
	"polyshop/shared/httpx"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newServer(t *testing.T) (*httptest.Server, *activity.Service) {
	t.Helper()
	st := cqltest.Store(t)
	svc := activity.NewService(st, cqltest.Logger(), activity.Options{})
	health := httpx.Health{Checks: map[string]func(context.Context) error{"cassandra": st.Ping}}
	srv := httptest.NewServer(httpapi.New(svc, cqltest.Logger(), health.Checks, nil).Handler())
	t.Cleanup(srv.Close)
	return srv, svc
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpx.HeaderRequestID, "test-request")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// golden compares body (indented) with testdata/<name>.json, or rewrites it with -update.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, body)
	}
	buf.WriteByte('\n')
	path := filepath.Join("..", "..", "testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(buf.String(), string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", path, diff)
	}
}

// A fixed user id for requests rejected before any read.
const someUser = "01a2154a-0000-7000-8000-000000000001"

func TestBadInputIs400Or422(t *testing.T) {
	srv, _ := newServer(t)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, path, field string
		status            int
	}{
		{"limit_zero", "/users/" + someUser + "/activity?limit=0", "limit", 422},
		{"limit_too_big", "/users/" + someUser + "/activity?limit=101", "limit", 422},
		{"limit_not_number", "/users/" + someUser + "/activity?limit=ten", "limit", 400},
		{"cursor_garbage", "/users/" + someUser + "/activity?cursor=%25%25%25", "cursor", 400},
		{"cursor_forged", "/users/" + someUser + "/activity?cursor=" + enc("v1:202611:0:x"), "cursor", 400},
		{"cursor_bucket_mismatch", "/users/" + someUser + "/activity?cursor=" + enc("v1:202612:1795651200000:01a2154a-74dc-732a-8374-cf6e7dcbb8a0"), "cursor", 400},
		{"user_id_not_uuid", "/users/bob/activity", "id", 400},
		{"recent_limit", "/activity/recent?limit=-3", "limit", 422},
		{"recent_limit_not_number", "/activity/recent?limit=3x", "limit", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.path)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != httpx.ContentTypeProblem {
				t.Fatalf("status %d, content type %q, want %d problem+json: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, body)
			}
			var p httpx.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Errorf("problem errors = %+v, want one for field %q", p.Errors, tc.field)
			}
		})
	}
	// One of each field as golden files, to pin the problem's full shape.
	for name, path := range map[string]string{
		"problem_bad_limit":  "/users/" + someUser + "/activity?limit=0",
		"problem_bad_cursor": "/users/" + someUser + "/activity?cursor=nope",
	} {
		_, body := get(t, srv, path)
		golden(t, name, body)
	}
}

func TestUnknownRouteIsProblem(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := get(t, srv, "/nope")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != httpx.ContentTypeProblem {
		t.Errorf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// uuids matches the ids that differ per run; normalize replaces them by stable names.
var uuids = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func normalize(body []byte, cursor string) []byte {
	seen := map[string]string{}
	if cursor != "" {
		body = bytes.ReplaceAll(body, []byte(cursor), []byte("<cursor>"))
	}
	return uuids.ReplaceAllFunc(body, func(id []byte) []byte {
		if _, ok := seen[string(id)]; !ok {
			seen[string(id)] = "<id-" + strconv.Itoa(len(seen)+1) + ">"
		}
		return []byte(seen[string(id)])
	})
}

func TestUserFeedPages(t *testing.T) {
	srv, svc := newServer(t)
	uid := activitytest.ID(t)
	at := time.Date(2026, 9, 30, 23, 0, 0, 0, time.UTC)
	envs := []struct{ at time.Time }{{at}, {at.Add(2 * time.Hour)}, {at.AddDate(0, 1, 5)}}
	if err := svc.Apply(context.Background(), activitytest.UserRegistered(t, uid, envs[0].at)); err != nil {
		t.Fatal(err)
	}
	for _, e := range envs[1:] {
		if err := svc.Apply(context.Background(), activitytest.SessionStarted(t, uid, e.at)); err != nil {
			t.Fatal(err)
		}
	}

	resp, body := get(t, srv, "/users/"+uid+"/activity?limit=2")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var first activity.Page
	if err := json.Unmarshal(body, &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 2 || first.Next == "" {
		t.Fatalf("first page = %s, want 2 items and a cursor", body)
	}
	golden(t, "user_feed_page1", normalize(body, first.Next))

	resp, body = get(t, srv, "/users/"+uid+"/activity?limit=2&cursor="+url.QueryEscape(first.Next))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second page: status %d: %s", resp.StatusCode, body)
	}
	var second activity.Page
	if err := json.Unmarshal(body, &second); err != nil {
		t.Fatal(err)
	}
	if len(second.Items) != 1 || second.Next != "" || second.Items[0].Summary != "Account created" {
		t.Errorf("second page = %s, want the registration only and no cursor", body)
	}
}

func TestRecentFeed(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := get(t, srv, "/activity/recent?limit=5")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var p activity.Page
	if err := json.Unmarshal(body, &p); err != nil || p.Items == nil || len(p.Items) > 5 {
		t.Errorf("body %s: want an items array of at most 5 (err %v)", body, err)
	}
}

func TestReadyz(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := get(t, srv, "/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
}
