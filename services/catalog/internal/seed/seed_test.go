package seed

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/catalog/internal/catalog"
)

func TestProductsAreDeterministicAndValid(t *testing.T) {
	seen := map[string]int{}
	for i := range 600 {
		a, b := Product(42, i), Product(42, i)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("product %d differs between runs (-first +second):\n%s", i, diff)
		}
		c, ok := catalog.LookupCategory(a.Category)
		if !ok {
			t.Fatalf("product %d: unknown category %q", i, a.Category)
		}
		var v catalog.Validation
		c.NormalizeAttributes(a.Attributes, &v)
		if err := v.Err(); err != nil {
			t.Fatalf("product %d (%s) has invalid attributes: %v", i, a.Name, err)
		}
		if a.Price == nil || a.Price.Amount <= 0 {
			t.Fatalf("product %d: bad price %+v", i, a.Price)
		}
		seen[a.Category]++
	}
	if got, want := len(seen), len(catalog.CategoryNames()); got != want {
		t.Errorf("products cover %d categories, want %d", got, want)
	}
	if Product(1, 0).Name == Product(2, 0).Name && Product(1, 1).Name == Product(2, 1).Name {
		t.Errorf("different seeds produced the same names")
	}
}
