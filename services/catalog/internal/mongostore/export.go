package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/services/catalog/internal/catalog"
)

// Export implements catalog.Store: deleted products are kept as documents (deleted: true
// at the delete's version), so the export hands them out as tombstones.
func (s *Store) Export(ctx context.Context, after string, limit int) ([]catalog.Product, error) {
	filter := bson.D{}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)).SetProjection(projection)
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("export products: %w", err)
	}
	var docs []productDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("export products: %w", err)
	}
	out := make([]catalog.Product, len(docs))
	for i, d := range docs {
		out[i] = d.product()
	}
	return out, nil
}
