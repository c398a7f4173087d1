package users

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testParams keep argon2id cheap in tests; production uses DefaultHashParams.
var testParams = HashParams{Time: 1, MemoryKiB: 64, Threads: 1}

func TestHasher(t *testing.T) {
	h, err := NewHasher(testParams)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash("correct horse 9")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(enc) {
		t.Fatalf("hash %q is not a PHC argon2id string with the configured parameters", enc)
	}
	again, _ := h.Hash("correct horse 9")
	if again == enc {
		t.Error("two hashes of one password are equal: salt is not random")
	}
	tests := []struct {
		name, password, hash string
		want                 bool
		wantErr              bool
	}{
		{"right password", "correct horse 9", enc, true, false},
		{"wrong password", "correct horse 8", enc, false, false},
		{"empty password", "", enc, false, false},
		{"not argon2id", "x", "$2b$10$abcdefghijklmnopqrstuv", false, true},
		{"bad params", "x", "$argon2id$v=19$m=x,t=1,p=1$c2FsdA$aGFzaA", false, true},
		{"bad version", "x", strings.Replace(enc, "v=19", "v=16", 1), false, true},
		{"empty", "x", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(tt.password, tt.hash)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	// A hash made with other parameters still verifies: they are read from the string.
	h2, _ := NewHasher(HashParams{Time: 2, MemoryKiB: 128, Threads: 2})
	enc2, _ := h2.Hash("correct horse 9")
	if ok, err := h.Verify("correct horse 9", enc2); !ok || err != nil {
		t.Errorf("Verify with other parameters = %v, %v; want true, nil", ok, err)
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		password string
		want     string // reason, "" when accepted
	}{
		{"", "is required"},
		{"Short1!", "must be at least 12 characters"},
		{"aaaaaaaaaaaa", "must mix at least two kinds of characters (lowercase, uppercase, digits, symbols or spaces)"},
		{"123456789012", "must mix at least two kinds of characters (lowercase, uppercase, digits, symbols or spaces)"},
		{"ÄÖÜÄÖÜÄÖÜÄÖÜ", "must mix at least two kinds of characters (lowercase, uppercase, digits, symbols or spaces)"},
		{strings.Repeat("ab1", 90), "must be at most 256 characters"},
		{"ann@example.com", "must not be the email address"},
		{"correct horse battery", ""},
		{"abcdefghijk1", ""},
		{"Ünïcödé-pässwörd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.password, func(t *testing.T) {
			err := CheckPassword(tt.password, "ann@example.com")
			got := ""
			var v *ValidationError
			if errors.As(err, &v) {
				if v.Field != "password" {
					t.Errorf("field = %q, want password", v.Field)
				}
				got = v.Reason
			} else if err != nil {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("reason (-got +want):\n%s", diff)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"Ann@Example.COM", "ann@example.com", false},
		{"  bob.smith+shop@mail.example.org ", "bob.smith+shop@mail.example.org", false},
		{"", "", true},
		{"ann", "", true},
		{"ann@", "", true},
		{"@example.com", "", true},
		{"ann@localhost", "", true},
		{"Ann <ann@example.com>", "", true},
		{"ann@exa mple.com", "", true},
		{"ann@@example.com", "", true},
		{"ann@-example.com", "", true},
		{strings.Repeat("a", 250) + "@example.com", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NormalizeEmail(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		name string
		in   Address
		want Address
		errs []ValidationError
	}{
		{
			name: "valid, trimmed, country upper-cased",
			in:   Address{Street: " 1 Main St ", City: "Berlin", PostalCode: "10115", Country: "de"},
			want: Address{Street: "1 Main St", City: "Berlin", PostalCode: "10115", Country: "DE"},
		},
		{
			name: "everything missing",
			in:   Address{},
			errs: []ValidationError{{"street", "is required"}, {"city", "is required"},
				{"postalCode", "is required"}, {"country", "is required"}},
		},
		{
			name: "bad postal code and country",
			in:   Address{Street: "1 Main St", City: "Berlin", PostalCode: "10115!", Country: "Germany"},
			errs: []ValidationError{{"postalCode", "must be 1 to 16 letters, digits, spaces or hyphens"},
				{"country", "must be an ISO 3166-1 alpha-2 code such as DE or FR"}},
		},
		{
			name: "control characters",
			in:   Address{Street: "1 Main\nSt", City: "Berlin", PostalCode: "10115", Country: "DE"},
			errs: []ValidationError{{"street", "must not contain control characters"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAddress(tt.in)
			var gotErrs []ValidationError
			var inv Invalid
			if errors.As(err, &inv) {
				for _, e := range inv {
					gotErrs = append(gotErrs, *e)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if diff := cmp.Diff(gotErrs, tt.errs); diff != "" {
				t.Errorf("errors (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("address (-got +want):\n%s", diff)
			}
		})
	}
}
