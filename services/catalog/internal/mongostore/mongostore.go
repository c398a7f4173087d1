// Package mongostore is the catalog's Store on a MongoDB-compatible server (FerretDB v1 on
// SQLite natively, MongoDB in compose). Each product is one document; a change and its
// events are written by one single-document update guarded by the version that was read,
// so neither multi-document transactions nor change streams are needed.
package mongostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/services/catalog/internal/catalog"
	"polyshop/services/catalog/migrations"
	"polyshop/shared/events"
	"polyshop/shared/outbox/mongooutbox"
)

// Collection is the name of the products collection.
const Collection = "products"

// maxAttempts bounds how often Update re-reads after losing a race to another writer.
const maxAttempts = 8

// Store keeps products in one collection. It is safe for concurrent use.
type Store struct {
	db   *mongo.Database
	coll *mongo.Collection
	// obox is the shared in-document outbox (outbox.go): its Write holds the product's
	// lock and tells this process's relay which document got pending events.
	obox *mongooutbox.Store
	// serverGuard: the version condition goes into the update's filter (MongoDB). FerretDB
	// v1 on SQLite evaluates any filter other than a lone _id by reading the whole
	// collection (hundreds of milliseconds per write at a thousand products), so there the
	// condition is checked under a per-product lock held across read and write instead.
	// That is correct for one catalog instance per FerretDB, which is how the native stack
	// runs it; compose runs MongoDB, where the filter guards across instances.
	serverGuard bool
	locks       *mongooutbox.Locks
}

var _ catalog.Store = (*Store)(nil)

// New returns a Store on db. It asks the server whether it is FerretDB (buildInfo) to
// choose how version conditions are enforced; see Store.
func New(ctx context.Context, db *mongo.Database) (*Store, error) {
	var info bson.M
	if err := db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return nil, fmt.Errorf("mongodb buildInfo: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	s := &Store{db: db, coll: db.Collection(Collection), serverGuard: !ferret, locks: &mongooutbox.Locks{}}
	s.obox = newOutbox(s, 0)
	return s, nil
}

// guard returns the filter of a write conditioned on the product still being at version.
func (s *Store) guard(id string, version int64) bson.D {
	if s.serverGuard {
		return bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}}
	}
	return bson.D{{Key: "_id", Value: id}}
}

// Collection returns the products collection, for the outbox relay.
func (s *Store) Collection() *mongo.Collection { return s.coll }

type indexDef struct {
	Name string  `json:"name"`
	Keys [][]any `json:"keys"`
}

// Migrate ensures the indexes of migrations/indexes.json exist. It is idempotent.
func (s *Store) Migrate(ctx context.Context) error {
	var defs map[string][]indexDef
	if err := json.Unmarshal(migrations.Indexes, &defs); err != nil {
		return fmt.Errorf("read indexes.json: %w", err)
	}
	for coll, idxs := range defs {
		models := make([]mongo.IndexModel, 0, len(idxs))
		for _, d := range idxs {
			keys := bson.D{}
			for _, k := range d.Keys {
				if len(k) != 2 {
					return fmt.Errorf("index %s: a key is [field, direction]", d.Name)
				}
				field, _ := k[0].(string)
				dir, _ := k[1].(float64)
				keys = append(keys, bson.E{Key: field, Value: int32(dir)})
			}
			models = append(models, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(d.Name)})
		}
		if err := createMissing(ctx, s.db.Collection(coll), models); err != nil {
			return err
		}
	}
	return s.migrateLegacyOutbox(ctx)
}

// createMissing creates the indexes whose names are not there yet, one at a time. Asking
// FerretDB v1 to create indexes that already exist makes it drop the connection (a panic
// in its createIndexes handler), so existing names are looked up first.
func createMissing(ctx context.Context, coll *mongo.Collection, models []mongo.IndexModel) error {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return fmt.Errorf("list indexes of %s: %w", coll.Name(), err)
	}
	var existing []struct {
		Name string `bson:"name"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fmt.Errorf("list indexes of %s: %w", coll.Name(), err)
	}
	have := map[string]bool{}
	for _, e := range existing {
		have[e.Name] = true
	}
	for _, m := range models {
		name := *m.Options.Name
		if have[name] {
			continue
		}
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("create index %s on %s: %w", name, coll.Name(), err)
		}
	}
	return nil
}

// Ping checks the server answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.Client().Ping(ctx, nil)
}

type moneyDoc struct {
	Amount   int64  `bson:"amount"`
	Currency string `bson:"currency"`
}

// productDoc is the stored form of a product. The outbox fields are written only by
// pushEvents and the relay (outbox.go) and never read into the domain.
type productDoc struct {
	ID           string     `bson:"_id"`
	Name         string     `bson:"name"`
	Description  string     `bson:"description"`
	Category     string     `bson:"category"`
	Price        moneyDoc   `bson:"price"`
	Attributes   bson.M     `bson:"attributes"`
	InitialStock int64      `bson:"initialStock"`
	Version      int64      `bson:"version"`
	CreatedAt    time.Time  `bson:"createdAt"`
	UpdatedAt    time.Time  `bson:"updatedAt"`
	Deleted      bool       `bson:"deleted"`
	DeletedAt    *time.Time `bson:"deletedAt,omitempty"`
	// OutboxN is the number of pending events (mongooutbox.FieldCount); read only.
	OutboxN int `bson:"_outboxN,omitempty"`
}

func toDoc(p catalog.Product) productDoc {
	attrs := bson.M{}
	for k, v := range p.Attributes {
		attrs[k] = v
	}
	return productDoc{
		ID: p.ID, Name: p.Name, Description: p.Description, Category: p.Category,
		Price:      moneyDoc{Amount: p.Price.Amount, Currency: p.Price.Currency},
		Attributes: attrs, InitialStock: p.InitialStock, Version: p.Version,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(), Deleted: p.Deleted, DeletedAt: p.DeletedAt,
	}
}

func (d productDoc) product() catalog.Product {
	p := catalog.Product{
		ID: d.ID, Name: d.Name, Description: d.Description, Category: d.Category,
		Price:        catalog.Money{Amount: d.Price.Amount, Currency: d.Price.Currency},
		Attributes:   normalizeMap(d.Attributes),
		InitialStock: d.InitialStock, Version: d.Version,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), Deleted: d.Deleted,
	}
	if d.DeletedAt != nil {
		t := d.DeletedAt.UTC()
		p.DeletedAt = &t
	}
	return p
}

// normalizeMap turns what the driver decodes (primitive.D, primitive.A, int32, …) into the
// plain JSON-like values the domain uses.
func normalizeMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = normalize(v)
	}
	return out
}

func normalize(v any) any {
	switch x := v.(type) {
	case primitive.D:
		m := make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = normalize(e.Value)
		}
		return m
	case primitive.M:
		return normalizeMap(x)
	case map[string]any:
		return normalizeMap(x)
	case primitive.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	return v
}

// projection leaves the outbox out of reads that build a Product.
var projection = bson.D{{Key: mongooutbox.FieldEvents, Value: 0}}

// Insert implements catalog.Store.
func (s *Store) Insert(ctx context.Context, p catalog.Product, evs []events.Envelope) error {
	doc, err := bson.Marshal(toDoc(p))
	if err != nil {
		return fmt.Errorf("encode product: %w", err)
	}
	var raw bson.D
	if err := bson.Unmarshal(doc, &raw); err != nil {
		return fmt.Errorf("encode product: %w", err)
	}
	raw, err = mongooutbox.AppendFields(raw, evs...)
	if err != nil {
		return err
	}
	return s.obox.Write(ctx, p.ID, func(ctx context.Context) error {
		if _, err := s.coll.InsertOne(ctx, raw); err != nil {
			return fmt.Errorf("insert product %s: %w", p.ID, err)
		}
		return nil
	})
}

// Get implements catalog.Store.
func (s *Store) Get(ctx context.Context, id string) (catalog.Product, error) {
	d, err := s.getDoc(ctx, id)
	return d.product(), err
}

func (s *Store) getDoc(ctx context.Context, id string) (productDoc, error) {
	var d productDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(projection)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, catalog.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("find product %s: %w", id, err)
	}
	return d, nil
}

// Update implements catalog.Store. The write's filter includes the version that fn saw, so
// a concurrent writer makes it match nothing; the state and the pushed events then are
// not written, and the loop starts over from a fresh read.
func (s *Store) Update(ctx context.Context, id string, fn func(*catalog.Product) ([]events.Envelope, error)) (catalog.Product, error) {
	var out catalog.Product
	err := s.obox.Write(ctx, id, func(ctx context.Context) error {
		for range maxAttempts {
			stored, err := s.getDoc(ctx, id)
			if err != nil {
				return err
			}
			p := stored.product()
			read := p.Version
			evs, err := fn(&p)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				out = p
				return nil
			}
			// A product whose event is parked keeps its later events; past the bound the
			// change is refused rather than growing the document without end.
			if err := s.obox.Room(stored.OutboxN, len(evs)); err != nil {
				return fmt.Errorf("update product %s: %w: %w", id, catalog.ErrBusy, err)
			}
			d := toDoc(p)
			set := bson.D{
				{Key: "name", Value: d.Name}, {Key: "description", Value: d.Description},
				{Key: "category", Value: d.Category}, {Key: "price", Value: d.Price},
				{Key: "attributes", Value: d.Attributes}, {Key: "version", Value: d.Version},
				{Key: "updatedAt", Value: d.UpdatedAt}, {Key: "deleted", Value: d.Deleted},
			}
			if d.DeletedAt != nil {
				set = append(set, bson.E{Key: "deletedAt", Value: *d.DeletedAt})
			}
			update := bson.M{"$set": set}
			if err := mongooutbox.AppendUpdate(update, evs...); err != nil {
				return err
			}
			res, err := s.coll.UpdateOne(ctx, s.guard(id, read), update)
			if err != nil {
				return fmt.Errorf("update product %s: %w", id, err)
			}
			if res.MatchedCount == 1 {
				out = p
				return nil
			}
		}
		return catalog.ErrBusy
	})
	if err != nil {
		return catalog.Product{}, err
	}
	return out, nil
}

// List implements catalog.Store.
func (s *Store) List(ctx context.Context, q catalog.ListQuery) ([]catalog.Product, error) {
	filter := bson.D{}
	if q.Category != "" {
		filter = append(filter, bson.E{Key: "category", Value: q.Category})
	}
	filter = append(filter, bson.E{Key: "deleted", Value: false})
	if q.After != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(q.Limit)).SetProjection(projection)
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	var docs []productDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	out := make([]catalog.Product, len(docs))
	for i, d := range docs {
		out[i] = d.product()
	}
	return out, nil
}

// Count implements catalog.Store.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "deleted", Value: false}})
	if err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	return n, nil
}
