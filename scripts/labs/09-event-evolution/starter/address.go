// Package lab09 is a consumer's decoding of users' address events, as orders' address-copy
// projection does it: the event's type and data in, the consumer's own Address out.
//
// Users is about to publish polyshop.users.address_changed.v2 beside v1 (see the lab's
// README). Make this consumer accept both, without breaking v1.
package lab09

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Address is the consumer's own model of a shipping address.
type Address struct {
	Street     string
	City       string
	PostalCode string
	Country    string // ISO 3166-1 alpha-2
}

// ErrUnknownType is returned for a type this consumer does not understand: the message is
// dead-lettered, never guessed at.
var ErrUnknownType = errors.New("unknown event type")

// Subjects are the NATS subjects the consumer subscribes to.
func Subjects() []string {
	return []string{"users.address_changed.v1"}
}

// v1 is the data of polyshop.users.address_changed.v1.
type v1 struct {
	UserID  string `json:"userId"`
	Address struct {
		Street     string `json:"street"`
		City       string `json:"city"`
		PostalCode string `json:"postalCode"`
		Country    string `json:"country"`
	} `json:"address"`
}

// Decode returns the user id and the address of an address event.
func Decode(eventType string, data []byte) (string, Address, error) {
	switch eventType {
	case "polyshop.users.address_changed.v1":
		var d v1
		if err := json.Unmarshal(data, &d); err != nil {
			return "", Address{}, err
		}
		a := d.Address
		return d.UserID, Address{Street: a.Street, City: a.City, PostalCode: a.PostalCode, Country: a.Country}, nil
	default:
		return "", Address{}, fmt.Errorf("%w: %s", ErrUnknownType, eventType)
	}
}
