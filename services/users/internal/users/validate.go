package users

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Field limits.
const (
	MaxEmailLen   = 254 // RFC 5321 path limit
	MaxNameLen    = 200
	MaxAddressLen = 200
)

var (
	// domainPattern: dot-separated labels of letters, digits and hyphens, at least two
	// labels, no leading or trailing hyphen in a label.
	domainPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	postalPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]{0,14}$`)
	countryCode   = regexp.MustCompile(`^[A-Z]{2}$`)
)

// NormalizeEmail trims and lowercases email and checks its shape: a bare address that
// net/mail accepts (no display name, no comments), a local part and a domain with at least
// two labels, at most MaxEmailLen characters. Lowercasing the whole address is a
// deliberate simplification: no real provider distinguishes local parts by case, and it
// makes the unique index and lookups agree.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", &ValidationError{"email", "is required"}
	}
	if len(e) > MaxEmailLen {
		return "", &ValidationError{"email", fmt.Sprintf("must be at most %d characters", MaxEmailLen)}
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", &ValidationError{"email", "must be a plain email address such as name@example.com"}
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || !domainPattern.MatchString(domain) {
		return "", &ValidationError{"email", "must be a plain email address such as name@example.com"}
	}
	return e, nil
}

// cleanText trims s and checks it is present, printable and at most max characters.
func cleanText(field, s string, max int) (string, *ValidationError) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", &ValidationError{field, "is required"}
	case !utf8.ValidString(s):
		return "", &ValidationError{field, "must be valid UTF-8"}
	case utf8.RuneCountInString(s) > max:
		return "", &ValidationError{field, fmt.Sprintf("must be at most %d characters", max)}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", &ValidationError{field, "must not contain control characters"}
		}
	}
	return s, nil
}

// NormalizeName trims name and checks it.
func NormalizeName(name string) (string, error) {
	n, verr := cleanText("name", name, MaxNameLen)
	if verr != nil {
		return "", verr
	}
	return n, nil
}

// NormalizeAddress trims every field, upper-cases the country and checks them all,
// reporting every invalid field at once: street and city are required printable text,
// postalCode is 1–16 letters, digits, spaces or hyphens, country is an ISO 3166-1 alpha-2
// code such as "DE".
func NormalizeAddress(a Address) (Address, error) {
	var errs Invalid
	var out Address
	var verr *ValidationError
	if out.Street, verr = cleanText("street", a.Street, MaxAddressLen); verr != nil {
		errs = append(errs, verr)
	}
	if out.City, verr = cleanText("city", a.City, MaxAddressLen); verr != nil {
		errs = append(errs, verr)
	}
	out.PostalCode = strings.TrimSpace(a.PostalCode)
	switch {
	case out.PostalCode == "":
		errs = append(errs, &ValidationError{"postalCode", "is required"})
	case !postalPattern.MatchString(out.PostalCode):
		errs = append(errs, &ValidationError{"postalCode", "must be 1 to 16 letters, digits, spaces or hyphens"})
	}
	out.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	switch {
	case out.Country == "":
		errs = append(errs, &ValidationError{"country", "is required"})
	case !countryCode.MatchString(out.Country):
		errs = append(errs, &ValidationError{"country", "must be an ISO 3166-1 alpha-2 code such as DE or FR"})
	}
	if err := errs.err(); err != nil {
		return Address{}, err
	}
	return out, nil
}
