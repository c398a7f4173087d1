package redisoutbox_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"polyshop/shared/events"
	"polyshop/shared/outbox"
	"polyshop/shared/outbox/outboxtest"
	"polyshop/shared/outbox/redisoutbox"
	"polyshop/shared/testenv/redistest"
)

func TestContract(t *testing.T) {
	outboxtest.Run(t, outboxtest.Harness{
		Owner: "sessions",
		New: func(t *testing.T) outboxtest.Fixture {
			rdb, prefix := redistest.Client(t, "SESSIONS_REDIS_URL")
			stream := prefix + "outbox"
			return outboxtest.Fixture{
				NewStore: func() outbox.Store { return redisoutbox.New(rdb, stream) },
				// MULTI/EXEC: the session's state and its events together.
				Commit: func(ctx context.Context, evs ...events.Envelope) error {
					last := evs[len(evs)-1]
					var addErr error
					_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
						pipe.HSet(ctx, prefix+"session:"+last.Subject, "version", last.Sequence)
						addErr = redisoutbox.Add(ctx, pipe, stream, evs...)
						return addErr
					})
					return err
				},
				WakesOnCommit: true,
				Footprint: func(ctx context.Context) (int, error) {
					n, err := rdb.XLen(ctx, stream).Result()
					return int(n), err
				},
			}
		},
	})
}
