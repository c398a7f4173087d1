package testenv

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	goldenUUID = regexp.MustCompile(`"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"`)
	goldenTime = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[^"]+"`)
)

// GoldenJSON compares the JSON body, indented and with every UUID and RFC 3339 time
// replaced by "<uuid>" and "<time>", to the file at path; with update it rewrites the file
// first (tests pass their -update flag).
func GoldenJSON(t testing.TB, path string, body []byte, update bool) {
	t.Helper()
	norm := goldenUUID.ReplaceAll(body, []byte(`"<uuid>"`))
	norm = goldenTime.ReplaceAll(norm, []byte(`"<time>"`))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, norm, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", norm, err)
	}
	if update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(pretty.String(), string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", path, diff)
	}
}
