package httpx_test

import (
	"net/http/httptest"
	"testing"

	"polyshop/shared/httpx"
)

func TestClientAddr(t *testing.T) {
	for _, tt := range []struct{ name, xff, remote, want string }{
		{"peer only", "", "192.0.2.1:5000", "192.0.2.1"},
		{"forwarded", "198.51.100.7", "127.0.0.1:5000", "198.51.100.7"},
		{"first of several", "198.51.100.7, 10.0.0.1", "127.0.0.1:5000", "198.51.100.7"},
		{"ipv6 normalised", "2001:DB8::1", "127.0.0.1:5000", "2001:db8::1"},
		{"garbage header falls back to the peer", "not-an-ip", "192.0.2.9:1", "192.0.2.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := httpx.ClientAddr(r); got != tt.want {
				t.Errorf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}
