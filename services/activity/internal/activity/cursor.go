package activity

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cursor is a position in a user's feed: the last entry a page returned. The next page
// starts strictly after it, in its bucket, and continues in older buckets.
type Cursor struct {
	// Bucket is the entry's month bucket (BucketOf(OccurredAt)).
	Bucket int
	// OccurredAt is the entry's time (millisecond precision, UTC).
	OccurredAt time.Time
	// EventID is the entry's event id, the tie-breaker within one millisecond.
	EventID string
}

// cursorVersion prefixes the encoded form so that the layout can change later while old
// cursors are still rejected cleanly (400) rather than misread.
const cursorVersion = "v1"

// CursorAfter returns the cursor that continues a feed after e.
func CursorAfter(e Entry) Cursor {
	return Cursor{Bucket: BucketOf(e.OccurredAt), OccurredAt: e.OccurredAt, EventID: e.EventID}
}

// Encode returns the cursor's opaque form: URL-safe base64 (no padding) of
// "v1:<bucket>:<unix millis>:<event id>". Clients must treat it as opaque.
func (c Cursor) Encode() string {
	raw := fmt.Sprintf("%s:%d:%d:%s", cursorVersion, c.Bucket, c.OccurredAt.UnixMilli(), c.EventID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes s, as returned by Encode. Any malformed or inconsistent cursor is an
// *InputError for the field "cursor".
func ParseCursor(s string) (Cursor, error) {
	bad := func(reason string) (Cursor, error) {
		return Cursor{}, &InputError{Field: "cursor", Reason: reason}
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not a cursor returned by this API (bad encoding)")
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 4 || parts[0] != cursorVersion {
		return bad("not a cursor returned by this API (unknown layout)")
	}
	bucket, err := strconv.Atoi(parts[1])
	if err != nil {
		return bad("not a cursor returned by this API (bad bucket)")
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return bad("not a cursor returned by this API (bad time)")
	}
	id, err := uuid.Parse(parts[3])
	if err != nil || id.String() != parts[3] {
		return bad("not a cursor returned by this API (bad event id)")
	}
	t := time.UnixMilli(ms).UTC()
	if BucketOf(t) != bucket {
		return bad("not a cursor returned by this API (bucket does not match time)")
	}
	return Cursor{Bucket: bucket, OccurredAt: t, EventID: parts[3]}, nil
}
