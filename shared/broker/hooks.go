package broker

import "polyshop/shared/events"

// OnHandled registers f, called by every consumer of the connection after a handler
// returned nil and before the message is acknowledged: the moment a crash leaves the work
// committed but the message unacknowledged, so it is redelivered. Package chaos uses it
// for the <service>.consumer.before_ack crash point. Register it before Consume; f must
// be safe for concurrent use. A nil f removes the hook.
func (c *Conn) OnHandled(f func(durable string, e events.Envelope)) {
	if f == nil {
		c.onHandled.Store(nil)
		return
	}
	c.onHandled.Store(&f)
}
