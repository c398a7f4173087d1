package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Letter is one dead letter as a service's operator API lists it (GET /admin/dlq,
// shared/admin): the fields the audit prints.
type Letter struct {
	Seq      uint64 `json:"seq"`
	Subject  string `json:"subject"`
	Consumer string `json:"consumer"`
	Reason   string `json:"reason"`
	EventID  string `json:"eventId"`
	Type     string `json:"type"`
}

// LetterKey names a dead letter: the service whose DLQ_<SERVICE> stream holds it and its
// sequence there (the id ./scripts/dlq uses).
type LetterKey struct {
	Service string
	Seq     uint64
}

func (k LetterKey) String() string { return fmt.Sprintf("%s %d", k.Service, k.Seq) }

// ParseExplained reads an explained-letters file: one dead letter a line,
//
//	<service> <seq> <reason...>
//
// with '#' comments and blank lines. An explained letter is kept on purpose (for evidence,
// say) and is not a violation; the reason is required so that the file says why.
func ParseExplained(r io.Reader) (map[LetterKey]string, error) {
	out := map[LetterKey]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want <service> <seq> <reason>, got %q", n, line)
		}
		seq, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || seq == 0 {
			return nil, fmt.Errorf("line %d: seq %q is not a positive integer", n, f[1])
		}
		out[LetterKey{Service: strings.ToLower(f[0]), Seq: seq}] = strings.Join(f[2:], " ")
	}
	return out, sc.Err()
}

// CheckDLQ checks the letters of one service's DLQ stream: every letter after baseline
// (the stream's last sequence before a run; 0 counts all) is a violation unless explained
// names it. It returns the violation (nil when none) and how many letters were explained.
func CheckDLQ(service string, letters []Letter, baseline uint64, explained map[LetterKey]string) (*Violation, int) {
	var bad []Letter
	n := 0
	for _, l := range letters {
		if l.Seq <= baseline {
			continue
		}
		if _, ok := explained[LetterKey{Service: service, Seq: l.Seq}]; ok {
			n++
			continue
		}
		bad = append(bad, l)
	}
	if len(bad) == 0 {
		return nil, n
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].Seq < bad[j].Seq })
	ids := []string{"DLQ_" + strings.ToUpper(service)}
	var reasons []string
	for i, l := range bad {
		ids = append(ids, strconv.FormatUint(l.Seq, 10))
		if i < 3 {
			reasons = append(reasons, fmt.Sprintf("%d: %s %s (%s)", l.Seq, l.Type, l.EventID, l.Reason))
		}
	}
	return &Violation{Kind: "dlq", IDs: ids, Detail: fmt.Sprintf(
		"%d unexplained dead letters (%s); replay or drop them (./scripts/dlq), or explain them (-explained)",
		len(bad), strings.Join(reasons, "; "))}, n
}

// deadLetters lists every letter of a service through its operator API.
func deadLetters(ctx context.Context, g getter, base string) ([]Letter, error) {
	var out []Letter
	after := uint64(0)
	for {
		var page struct {
			Items     []Letter
			NextAfter uint64
		}
		if err := g.get(ctx, base+"/admin/dlq?limit=1000&after="+url.QueryEscape(strconv.FormatUint(after, 10)), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextAfter == 0 || len(page.Items) == 0 {
			return out, nil
		}
		after = page.NextAfter
	}
}
