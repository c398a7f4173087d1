package rebuild

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"polyshop/shared/httpx"
)

// Export page limits every owner's export endpoint uses.
const (
	DefaultExportLimit = 200
	MaxExportLimit     = 1000
)

// cursorPrefix versions the export cursor format.
const cursorPrefix = "x1:"

// EncodeCursor makes the opaque cursor of an export page that ends at key (the page's last
// aggregate id; pages are in key order).
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

// ParseExportQuery reads an export request's cursor and limit, for owners serving
// GET /export/...?cursor=&limit=: after is the last key of the previous page ("" for the
// first page). A parameter that is not a cursor this package issued, a limit that is not an
// integer, an unknown or repeated parameter → 400; a limit outside 1..MaxExportLimit → 422.
func ParseExportQuery(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	var malformed, invalid []httpx.FieldError
	for k, v := range q {
		switch {
		case k != "cursor" && k != "limit":
			malformed = append(malformed, httpx.FieldError{Field: k, Reason: "is not a parameter of this endpoint"})
		case len(v) > 1:
			malformed = append(malformed, httpx.FieldError{Field: k, Reason: "is given more than once"})
		}
	}
	limit = DefaultExportLimit
	if s := q.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		switch {
		case perr != nil:
			malformed = append(malformed, httpx.FieldError{Field: "limit", Reason: "must be an integer"})
		case n < 1 || n > MaxExportLimit:
			invalid = append(invalid, httpx.FieldError{Field: "limit", Reason: fmt.Sprintf("must be between 1 and %d", MaxExportLimit)})
		default:
			limit = n
		}
	}
	if s := q.Get("cursor"); s != "" {
		b, derr := base64.RawURLEncoding.DecodeString(s)
		if derr != nil || !strings.HasPrefix(string(b), cursorPrefix) || len(b) == len(cursorPrefix) {
			malformed = append(malformed, httpx.FieldError{Field: "cursor", Reason: "is not a cursor this service issued"})
		} else {
			after = strings.TrimPrefix(string(b), cursorPrefix)
		}
	}
	if len(malformed) > 0 {
		return "", 0, httpx.BadRequest("The export parameters are malformed.", malformed...)
	}
	if len(invalid) > 0 {
		return "", 0, httpx.Unprocessable("The export parameters are out of range.", invalid...)
	}
	return after, limit, nil
}

// WritePage writes one export page: items (never null) and, when the page is full, the
// cursor after its last key. A full last page costs the caller one more, empty, request.
func WritePage[T any](w http.ResponseWriter, items []T, limit int, key func(T) string) error {
	p := Page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) == limit && limit > 0 {
		p.NextCursor = EncodeCursor(key(items[len(items)-1]))
	}
	return httpx.WriteJSON(w, http.StatusOK, p)
}
