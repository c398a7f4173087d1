package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/httpx"
)

type orderRequest struct {
	Items []struct {
		ProductID string `json:"productId"`
		Quantity  int    `json:"quantity"`
	} `json:"items"`
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		max         int64
		wantStatus  int // 0: success
		wantDetail  string
		wantFields  []httpx.FieldError
	}{
		{name: "valid", contentType: "application/json", body: `{"items":[{"productId":"p","quantity":2}]}`},
		{name: "charset and no content type", contentType: "application/json; charset=utf-8", body: `{}`},
		{name: "absent content type", body: `{"note":"x"}`},
		{name: "merge patch type", contentType: "application/merge-patch+json", body: `{}`},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: `a=b`,
			wantStatus: 415, wantDetail: "application/x-www-form-urlencoded"},
		{name: "empty", contentType: "application/json", body: ``, wantStatus: 400, wantDetail: "empty"},
		{name: "syntax", contentType: "application/json", body: `{"note": x}`, wantStatus: 400, wantDetail: "byte offset 10"},
		{name: "truncated", contentType: "application/json", body: `{"note": "x"`, wantStatus: 400, wantDetail: "ends unexpectedly"},
		{name: "unknown field", body: `{"notes":"x"}`, wantStatus: 400,
			wantFields: []httpx.FieldError{{Field: "notes", Reason: "unknown field"}}},
		{name: "wrong type", body: `{"items":[{"productId":"p","quantity":"two"}]}`, wantStatus: 400,
			wantFields: []httpx.FieldError{{Field: "items.quantity", Reason: "must be an integer, not string"}}},
		{name: "fraction for integer", body: `{"items":[{"quantity":1.5}]}`, wantStatus: 400,
			wantFields: []httpx.FieldError{{Field: "items.quantity", Reason: "must be an integer, not number 1.5"}}},
		{name: "array for object", body: `[]`, wantStatus: 400, wantDetail: "must be an object, not JSON array"},
		{name: "bad time", body: `{"at":"yesterday"}`, wantStatus: 400, wantDetail: "invalid value"},
		{name: "trailing data", body: `{} {}`, wantStatus: 400, wantDetail: "single JSON value"},
		{name: "trailing garbage", body: `{} x`, wantStatus: 400, wantDetail: "malformed"},
		{name: "too large", body: `{"note":"` + strings.Repeat("x", 100) + `"}`, max: 50, wantStatus: 413, wantDetail: "50 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			var v orderRequest
			err := httpx.DecodeJSON(req, &v, tt.max)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				return
			}
			var he *httpx.Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want *httpx.Error", err)
			}
			if diff := cmp.Diff(he.Status, tt.wantStatus); diff != "" {
				t.Errorf("status (-got +want):\n%s\n%v", diff, err)
			}
			if !strings.Contains(he.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to mention %q", he.Detail, tt.wantDetail)
			}
			if diff := cmp.Diff(he.Fields, tt.wantFields); diff != "" {
				t.Errorf("fields (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecodeJSONBadTarget(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	var v orderRequest
	err := httpx.DecodeJSON(req, v, 0) // not a pointer: the handler's bug, so a 500
	var he *httpx.Error
	if err == nil || errors.As(err, &he) {
		t.Errorf("err = %v, want a plain error", err)
	}
}
