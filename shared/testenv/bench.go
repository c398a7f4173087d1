package testenv

import (
	"io"
	"net/http"
	"testing"
)

// BenchHTTP runs do from 4 goroutines per CPU for b.N requests in all, draining each
// answer, and fails the benchmark on an error or a status other than want.
func BenchHTTP(b *testing.B, want int, do func() (*http.Response, error)) {
	b.Helper()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := do()
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
}
