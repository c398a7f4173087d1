package orders

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Cursor is a position in a newest-first list: the last order a page returned.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns the opaque form: URL-safe base64 of "v1:<unix micros>:<id>".
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + ":" + c.ID))
}

// ParseCursor decodes s, as returned by Encode; anything else is a *BadRequestError.
func ParseCursor(s string) (Cursor, error) {
	bad := &BadRequestError{"cursor", "not a cursor returned by this API"}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != "v1" || !isUUID(parts[2]) {
		return Cursor{}, bad
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: parts[2]}, nil
}
