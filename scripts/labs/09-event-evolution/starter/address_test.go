package lab09

import (
	"errors"
	"slices"
	"testing"
)

func TestDecode(t *testing.T) {
	want := Address{Street: "Rua Augusta 1\nApt 2", City: "Lisboa", PostalCode: "1100-048", Country: "PT"}
	tests := []struct {
		name    string
		typ     string
		data    string
		want    Address
		wantErr error
	}{
		{"v1", "polyshop.users.address_changed.v1",
			`{"userId":"u1","address":{"street":"Rua Augusta 1\nApt 2","city":"Lisboa","postalCode":"1100-048","country":"PT"},"changedAt":"2026-12-01T10:00:00Z"}`, want, nil},
		{"v1 with a field added later (tolerant reader)", "polyshop.users.address_changed.v1",
			`{"userId":"u1","address":{"street":"Rua Augusta 1\nApt 2","city":"Lisboa","postalCode":"1100-048","country":"PT","region":"Lisboa"},"changedAt":"2026-12-01T10:00:00Z","source":"web"}`, want, nil},
		{"v2: lines instead of street, countryCode instead of country", "polyshop.users.address_changed.v2",
			`{"userId":"u1","address":{"lines":["Rua Augusta 1","Apt 2"],"city":"Lisboa","postalCode":"1100-048","countryCode":"PT"},"changedAt":"2026-12-01T10:00:00Z"}`, want, nil},
		{"v2 with one line", "polyshop.users.address_changed.v2",
			`{"userId":"u1","address":{"lines":["Rua Augusta 1"],"city":"Lisboa","postalCode":"1100-048","countryCode":"PT"}}`,
			Address{Street: "Rua Augusta 1", City: "Lisboa", PostalCode: "1100-048", Country: "PT"}, nil},
		{"v3 is not understood: dead letter, no guess", "polyshop.users.address_changed.v3",
			`{"userId":"u1","address":{}}`, Address{}, ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, got, err := Decode(tt.typ, []byte(tt.data))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if id != "u1" || got != tt.want {
				t.Errorf("Decode = %q %+v, want u1 %+v", id, got, tt.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	got := Subjects()
	for _, s := range []string{"users.address_changed.v1", "users.address_changed.v2"} {
		if !slices.Contains(got, s) {
			t.Errorf("Subjects() = %v: without %s the consumer never sees those events", got, s)
		}
	}
}
