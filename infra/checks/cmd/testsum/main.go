// Command testsum reads `go test -json` events on standard input, prints the usual package
// lines (ok / FAIL / no test files), the full output of every failed test, and at the end one
// closing line "N passed, N failed, N skipped" counting tests and subtests. It exits 1 when a
// test or a package failed (a build failure counts as a failed package). With -total the
// closing line counts the whole run so far, but the exit status is about this input alone,
// so one module's failure is not reported again for every module after it.
//
// scripts/test pipes every module's run through it, so a run's summary reads the same
// whatever the module.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type counts struct{ passed, failed, skipped, failedPkgs int }

func main() {
	total := flag.String("total", "", "file accumulating counts across runs (read, added to, rewritten)")
	flag.Parse()
	c, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	own := c // this run's counts: the exit status is about this module alone
	if *total != "" {
		var prev counts
		if b, err := os.ReadFile(*total); err == nil {
			fmt.Sscanf(string(b), "%d %d %d %d", &prev.passed, &prev.failed, &prev.skipped, &prev.failedPkgs)
		}
		c.passed += prev.passed
		c.failed += prev.failed
		c.skipped += prev.skipped
		c.failedPkgs += prev.failedPkgs
		os.WriteFile(*total, fmt.Appendf(nil, "%d %d %d %d\n", c.passed, c.failed, c.skipped, c.failedPkgs), 0o644)
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped)
	if own.failed > 0 || own.failedPkgs > 0 {
		os.Exit(1)
	}
}

// summarize consumes the event stream; non-JSON lines (build errors) are passed through.
func summarize(r io.Reader, w io.Writer) (counts, error) {
	var c counts
	output := map[string]*strings.Builder{} // package/test → its output, kept until it ends
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(w, string(line))
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "output":
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgLine(w, e, output[key])
				if e.Action == "fail" {
					c.failedPkgs++
				}
			} else {
				switch e.Action {
				case "pass":
					c.passed++
				case "skip":
					c.skipped++
				case "fail":
					c.failed++
					fmt.Fprintf(w, "--- FAIL: %s (%s)\n", e.Test, e.Package)
					if b := output[key]; b != nil {
						fmt.Fprint(w, b.String())
					}
				}
			}
			delete(output, key)
		}
	}
	return c, sc.Err()
}

func pkgLine(w io.Writer, e event, out *strings.Builder) {
	switch e.Action {
	case "pass":
		fmt.Fprintf(w, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case "skip":
		fmt.Fprintf(w, "?   \t%s\t[no test files]\n", e.Package)
	case "fail":
		// A package that failed without a failing test (build error, panic, timeout): show why.
		if out != nil {
			fmt.Fprint(w, out.String())
		}
		fmt.Fprintf(w, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
	}
}
