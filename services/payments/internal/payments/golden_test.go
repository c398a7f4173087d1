package payments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"polyshop/services/payments/internal/payments"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The envelopes payments publishes, as orders and activity will read them: golden files
// with ids and times replaced by placeholders.
func TestEnvelopesGolden(t *testing.T) {
	ctx := context.Background()
	svc, pool, _ := setup(t, payments.Options{})
	order, user := newID(t), newID(t)
	if _, err := svc.Charge(ctx, chargeCmd(t, order, user, 1, 1299)); err != nil {
		t.Fatal(err)
	}
	late := newID(t)
	if _, err := svc.Refund(ctx, refundCmd(t, late, user, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Charge(ctx, chargeCmd(t, late, user, 2, 1299)); err != nil {
		t.Fatal(err)
	}
	envs := pending(t, pool)
	names := []string{"reply_charged.json", "event_payment_charged.json", "reply_refunded_tombstone.json", "reply_declined_refunded.json"}
	if len(envs) != len(names) {
		t.Fatalf("%d envelopes, want %d", len(envs), len(names))
	}
	for i, e := range envs {
		e.Data = compact(t, e.Data)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		goldenJSON(t, names[i], b)
	}
}

func goldenJSON(t *testing.T, name string, body []byte) {
	t.Helper()
	norm := regexp.MustCompile(`"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"`).ReplaceAll(body, []byte(`"<uuid>"`))
	norm = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[^"]+"`).ReplaceAll(norm, []byte(`"<time>"`))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, norm, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", norm, err)
	}
	path := filepath.Join("..", "..", "testdata", name)
	if *update {
		if err := os.WriteFile(path, append(pretty.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(pretty.String()+"\n", string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", name, diff)
	}
}
