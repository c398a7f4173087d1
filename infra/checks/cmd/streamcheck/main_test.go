package main

import "testing"

func TestTestEvent(t *testing.T) {
	cases := []struct {
		subject, body string
		want          bool
	}{
		{"users.registered.v1", `{"type":"polyshop.users.registered.v1"}`, false},
		{"users.test_k3v9q0x2m1ab.v1", `{"type":"polyshop.users.test_k3v9q0x2m1ab.v1"}`, true},
		{"users.registered.v1", `{"type":"polyshop.test.users.test_k3v9q0x2m1ab.v1"}`, true},
		{"test.users.registered.v1", `{"type":"polyshop.users.registered.v1"}`, true},
		{"catalog.product_created.v1", `not json`, false},
		{"catalog.test_x.v1", `not json`, true},
	}
	for _, c := range cases {
		if _, got := testEvent(c.subject, []byte(c.body)); got != c.want {
			t.Errorf("testEvent(%q, %s) = %v, want %v", c.subject, c.body, got, c.want)
		}
	}
}
