package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummarizeCountsTestsAndShowsFailures(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"fine\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    want 2, got 3\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB/sub"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"skip","Package":"p","Test":"TestC"}`,
		`{"Action":"fail","Package":"p","Elapsed":1.5}`,
		`# q: build failed`,
		`{"Action":"skip","Package":"r"}`,
	}, "\n")
	var out strings.Builder
	got, err := summarize(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, counts{passed: 1, failed: 2, skipped: 1, failedPkgs: 1}, cmp.AllowUnexported(counts{})); diff != "" {
		t.Errorf("counts (-got +want):\n%s", diff)
	}
	for _, want := range []string{"--- FAIL: TestB/sub (p)\n    want 2, got 3\n", "FAIL\tp\t1.500s", "# q: build failed", "?   \tr\t[no test files]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "fine") {
		t.Errorf("output of a passing test was printed:\n%s", out.String())
	}
}
