package search_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/search/internal/search"
	"polyshop/shared/events"
)

const pid = "0192f1a4-7d3c-7cde-9a1b-2f4c6d8e0a12"

var at = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func put(v int64, name string) search.Op {
	return search.Op{Kind: search.OpPut, ID: pid, Version: v, Doc: search.Document{ID: pid, Name: name, Category: "kettle",
		Price: events.Money{Amount: 100 * v, Currency: "EUR"}, Attributes: map[string]any{}, AttrFacets: []string{}, Version: v, UpdatedAt: at}}
}

func del(v int64) search.Op { return search.Op{Kind: search.OpDelete, ID: pid, Version: v} }

func stock(v, available int64) search.Op {
	return search.Op{Kind: search.OpStock, ID: pid, Version: v, Available: available}
}

func i64(v int64) *int64 { return &v }

// permutations calls fn with every ordering of ops.
func permutations(ops []search.Op, fn func([]search.Op)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(ops) {
			fn(ops)
			return
		}
		for i := k; i < len(ops); i++ {
			ops[k], ops[i] = ops[i], ops[k]
			rec(k + 1)
			ops[k], ops[i] = ops[i], ops[k]
		}
	}
	rec(0)
}

// Every delivery order of the same events, with duplicates, folds into the same document:
// the catalog part of the highest catalog version, the stock part of the highest stock version.
func TestFoldConvergesWhateverTheOrder(t *testing.T) {
	tests := []struct {
		name    string
		ops     []search.Op
		want    search.Document
		visible bool
	}{
		{
			name:    "catalog and stock interleaved",
			ops:     []search.Op{put(1, "one"), put(2, "two"), stock(1, 5), stock(2, 0), stock(3, 7), put(2, "two")},
			want:    search.Document{ID: pid, Name: "two", Category: "kettle", Price: events.Money{Amount: 200, Currency: "EUR"}, Attributes: map[string]any{}, AttrFacets: []string{}, Version: 2, UpdatedAt: at, StockVersion: 3, Available: i64(7), InStock: true},
			visible: true,
		},
		{
			name:    "stock only: hidden until the catalog part arrives",
			ops:     []search.Op{stock(2, 4), stock(1, 9), stock(2, 4)},
			want:    search.Document{ID: pid, StockVersion: 2, Available: i64(4), InStock: true},
			visible: false,
		},
		{
			name:    "deleted: a tombstone whatever came before or after",
			ops:     []search.Op{put(1, "one"), put(2, "two"), del(3), stock(1, 5), stock(2, 0)},
			want:    search.Document{ID: pid, Version: 3, Deleted: true, StockVersion: 2, Available: i64(0)},
			visible: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orders, wrong := 0, 0
			permutations(append([]search.Op(nil), tc.ops...), func(order []search.Op) {
				orders++
				got, _ := search.Fold(nil, order)
				diff := cmp.Diff(got, tc.want)
				if diff != "" || got.Visible() != tc.visible {
					if wrong++; wrong == 1 { // one example is enough
						t.Errorf("order %+v: visible %v, want %v; (-got +want):\n%s", order, got.Visible(), tc.visible, diff)
					}
				}
			})
			if wrong > 0 {
				t.Errorf("%d of %d orders gave another document", wrong, orders)
			}
		})
	}
}

func TestApplyToIgnoresStaleAndDuplicateOps(t *testing.T) {
	base, _ := search.Fold(nil, []search.Op{put(2, "two"), stock(5, 3)})
	tests := []struct {
		name    string
		op      search.Op
		changed bool
	}{
		{"same catalog version", put(2, "again"), false},
		{"older catalog version", put(1, "old"), false},
		{"newer catalog version", put(3, "three"), true},
		{"same stock version", stock(5, 8), false},
		{"older stock version", stock(4, 8), false},
		{"newer stock version", stock(6, 8), true},
		{"delete older than the document", del(1), false},
		{"delete", del(3), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := tc.op.ApplyTo(&base)
			if changed != tc.changed {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			if !changed {
				if diff := cmp.Diff(got, base); diff != "" {
					t.Errorf("an unchanged document differs (-got +want):\n%s", diff)
				}
			}
		})
	}
}

func TestOpForStockChanged(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		subject string
		seq     int64
		data    events.StockChanged
		want    search.Op
		invalid string
	}{
		{name: "in stock", subject: pid, seq: 4, data: events.StockChanged{ProductID: pid, Available: 3, Version: 4},
			want: search.Op{Kind: search.OpStock, ID: pid, Version: 4, Available: 3}},
		{name: "sold out", subject: pid, seq: 5, data: events.StockChanged{ProductID: pid, Available: 0, Version: 5},
			want: search.Op{Kind: search.OpStock, ID: pid, Version: 5, Available: 0}},
		{name: "other subject", subject: "0192f1a4-0000-7cde-9a1b-2f4c6d8e0a12", seq: 4,
			data: events.StockChanged{ProductID: pid, Available: 3, Version: 4}, invalid: "data.productId"},
		{name: "version is not the sequence", subject: pid, seq: 4,
			data: events.StockChanged{ProductID: pid, Available: 3, Version: 3}, invalid: "data.version"},
		{name: "negative", subject: pid, seq: 4,
			data: events.StockChanged{ProductID: pid, Available: -1, Version: 4}, invalid: "data.available"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := events.New(ctx, events.TypeStockChanged, tc.subject, tc.seq, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			op, err := search.OpFor(e)
			if tc.invalid != "" {
				var fe *events.FieldError
				if !errors.Is(err, events.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.invalid {
					t.Fatalf("err = %v, want an invalid %s", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(op, tc.want); diff != "" {
				t.Errorf("op (-got +want):\n%s", diff)
			}
		})
	}
}
