package httpx

import (
	"net"
	"net/http"
	"strings"
)

// ClientAddr returns the address of the person behind an internal request: the first
// X-Forwarded-For entry, which the gateway sets from its peer (ignoring any the client
// sent), or else the peer address. Only internal services, reached through the gateway on
// loopback, may trust the header; the gateway itself never does.
func ClientAddr(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
