package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/shared/config"
)

func TestReader(t *testing.T) {
	env := config.MapGetenv(map[string]string{
		"ADDR":    "127.0.0.1:9000",
		"N":       "42",
		"D":       "1500ms",
		"B":       "true",
		"BLANK":   "   ",
		"URL":     "postgres://u:p@h/db",
		"PADDED":  " x ",
		"NEG_DUR": "-1s",
	})
	r := config.New(env)
	type result struct {
		Addr, Def, Blank, Padded, URL string
		N, NDef                       int
		D, DDef                       time.Duration
		B, BDef                       bool
	}
	got := result{
		Addr:   r.String("ADDR", "x"),
		Def:    r.String("MISSING", "fallback"),
		Blank:  r.String("BLANK", "fallback"),
		Padded: r.String("PADDED", ""),
		URL:    r.Required("URL"),
		N:      r.Int("N", 1),
		NDef:   r.Int("MISSING", 7),
		D:      r.Duration("D", time.Second),
		DDef:   r.Duration("MISSING", time.Minute),
		B:      r.Bool("B", false),
		BDef:   r.Bool("MISSING", true),
	}
	want := result{
		Addr: "127.0.0.1:9000", Def: "fallback", Blank: "fallback", Padded: "x", URL: "postgres://u:p@h/db",
		N: 42, NDef: 7, D: 1500 * time.Millisecond, DDef: time.Minute, B: true, BDef: true,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("values (-got +want):\n%s", diff)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestReaderCollectsErrors(t *testing.T) {
	r := config.New(config.MapGetenv(map[string]string{
		"N": "many", "D": "soon", "B": "yes please", "NEG": "-5s",
	}))
	gotN, gotD, gotB, gotNeg := r.Int("N", 3), r.Duration("D", time.Second), r.Bool("B", true), r.Duration("NEG", 2*time.Second)
	r.Required("NEEDED")
	if diff := cmp.Diff([]any{gotN, gotD, gotB, gotNeg}, []any{3, time.Second, true, 2 * time.Second}); diff != "" {
		t.Errorf("bad values must fall back to defaults (-got +want):\n%s", diff)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("Err() = nil, want every problem")
	}
	for _, want := range []string{`N="many": want an integer`, `D="soon"`, `B="yes please": want true or false`, `NEG="-5s"`, "NEEDED: required but not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %q, want it to mention %q", err, want)
		}
	}
}

func TestNilGetenv(t *testing.T) {
	r := config.New(nil)
	if got := r.String("X", "d"); got != "d" {
		t.Errorf("String = %q, want default", got)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://users:lab-users-pg-71a2@127.0.0.1:5432/users?sslmode=disable", "postgres://users:***@127.0.0.1:5432/users?sslmode=disable"},
		{"redis://sessions:s3cr%40t@127.0.0.1:6379/0", "redis://sessions:***@127.0.0.1:6379/0"},
		{"nats://orders:pw@127.0.0.1:4222", "nats://orders:***@127.0.0.1:4222"},
		{"mongodb://127.0.0.1:27017/catalog", "mongodb://127.0.0.1:27017/catalog"},
		{"mongodb://catalog:pw@mongo:27017/catalog?authSource=catalog", "mongodb://catalog:***@mongo:27017/catalog?authSource=catalog"},
		{"http://127.0.0.1:9200", "http://127.0.0.1:9200"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=***&sslmode=disable"},
		{"mongodb://u:pw@h1:27017,h2:27017/db", "mongodb://u:***@h1:27017,h2:27017/db"},
		{"127.0.0.1:8081", "127.0.0.1:8081"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(config.Redact(tt.in), tt.want); diff != "" {
				t.Errorf("Redact(%q) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}
