package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// redisEngine: Redis through go-redis/v9, every key under bench:. A hash per item; a sorted
// set per partition (score = seq) for the feed; a sorted set per category as a secondary
// index that the application keeps itself; INCR for counters; WATCH/MULTI/EXEC for the
// conditional update. Redis has no query language: no full text (that is the RediSearch
// module, not Redis) and no aggregation.
type redisEngine struct{ rdb *redis.Client }

func newRedis(ctx context.Context, url string, conns int) (*redisEngine, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.PoolSize = conns
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	return &redisEngine{rdb}, nil
}

func (e *redisEngine) Name() string { return "Redis" }
func (e *redisEngine) Close()       { e.rdb.Close() }

func (e *redisEngine) Version(ctx context.Context) (string, error) {
	// HELLO (a connection command) tells the version; INFO is not the bench user's to run.
	hello, err := e.rdb.Do(ctx, "HELLO").Result()
	if err != nil {
		return "", err
	}
	if m, ok := hello.(map[any]any); ok {
		return fmt.Sprintf("Redis %v", m["version"]), nil
	}
	return fmt.Sprintf("Redis (HELLO answered %T)", hello), nil
}

func itemKey(id string) string    { return "bench:item:" + id }
func categoryKey(c string) string { return "bench:cat:" + c }
func feedKey(p string) string     { return "bench:feed:" + p }
func counterKey(id string) string { return "bench:counter:" + id }
func eventMember(ev Event) string { return fmt.Sprintf("%d|%s|%s", ev.Seq, ev.Kind, ev.Payload) }

func (e *redisEngine) Load(ctx context.Context, d *Dataset) error {
	// Everything an earlier run left: SCAN (never KEYS, which the bench user may not run).
	iter := e.rdb.Scan(ctx, 0, "bench:*", 1000).Iterator()
	var old []string
	for iter.Next(ctx) {
		if old = append(old, iter.Val()); len(old) == 1000 {
			if err := e.rdb.Unlink(ctx, old...).Err(); err != nil {
				return err
			}
			old = old[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(old) > 0 {
		if err := e.rdb.Unlink(ctx, old...).Err(); err != nil {
			return err
		}
	}
	pipe := e.rdb.Pipeline()
	flush := func(force bool) error {
		if pipe.Len() < 1000 && !force {
			return nil
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	for _, it := range d.Items {
		pipe.HSet(ctx, itemKey(it.ID), "category", it.Category, "name", it.Name, "description", it.Description, "price", it.Price, "version", 0)
		pipe.ZAdd(ctx, categoryKey(it.Category), redis.Z{Member: it.ID})
		if err := flush(false); err != nil {
			return err
		}
	}
	err := d.Events(func(p string, es []Event) error {
		zs := make([]redis.Z, len(es))
		for i, ev := range es {
			zs[i] = redis.Z{Score: float64(ev.Seq), Member: eventMember(ev)}
		}
		pipe.ZAdd(ctx, feedKey(p), zs...)
		return flush(false)
	})
	if err != nil {
		return err
	}
	for _, id := range d.CounterIDs() {
		pipe.Set(ctx, counterKey(id), 0, 0)
	}
	return flush(true)
}

func (e *redisEngine) PointRead(ctx context.Context, id string) error {
	m, err := e.rdb.HGetAll(ctx, itemKey(id)).Result()
	if err == nil && len(m) == 0 {
		return redis.Nil
	}
	return err
}

// BatchRead pipelines 100 HGETALLs: one round trip (MGET would do for plain strings).
func (e *redisEngine) BatchRead(ctx context.Context, ids []string) error {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, itemKey(id))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if len(c.Val()) == 0 {
			return redis.Nil
		}
	}
	return nil
}

func (e *redisEngine) NewestPage(ctx context.Context, partition string) error {
	page, err := e.rdb.ZRevRange(ctx, feedKey(partition), 0, 19).Result()
	if err != nil {
		return err
	}
	return expect("page", len(page), 20)
}

// BySecondary reads the application's own index (a sorted set of ids per category), then
// the 20 items in one pipeline: two round trips, and the index is the writer's job.
func (e *redisEngine) BySecondary(ctx context.Context, category string) error {
	ids, err := e.rdb.ZRange(ctx, categoryKey(category), 0, 19).Result()
	if err != nil {
		return err
	}
	if err := expect("secondary", len(ids), 20); err != nil {
		return err
	}
	return e.BatchRead(ctx, ids)
}

func (e *redisEngine) Insert(ctx context.Context, ev Event) error {
	return e.rdb.ZAdd(ctx, feedKey(ev.Partition), redis.Z{Score: float64(ev.Seq), Member: eventMember(ev)}).Err()
}

// ConditionalUpdate: WATCH the item, read it, and MULTI/EXEC the change; EXEC fails if the
// key changed after WATCH.
func (e *redisEngine) ConditionalUpdate(ctx context.Context, id string) error {
	key := itemKey(id)
	err := e.rdb.Watch(ctx, func(tx *redis.Tx) error {
		price, err := tx.HGet(ctx, key, "price").Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, "price", strconv.Itoa(price+1))
			p.HIncrBy(ctx, key, "version", 1)
			return nil
		})
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		return errConflict
	}
	return err
}

func (e *redisEngine) Increment(ctx context.Context, counter string) error {
	return e.rdb.Incr(ctx, counterKey(counter)).Err()
}

func (e *redisEngine) FullText(context.Context, string) error {
	return na("Redis itself has no text index (that is the RediSearch module)")
}

func (e *redisEngine) GroupBy(context.Context) error {
	return na("no server-side aggregation: the writer must keep per-category totals itself")
}

var _ Engine = (*redisEngine)(nil)
