package mongotest_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"polyshop/shared/testenv/mongotest"
)

func TestDatabase(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("isolated", func(t *testing.T) {
		db := mongotest.Database(t, "CATALOG_MONGODB_URI")
		name = db.Name()
		if !strings.HasPrefix(name, "t_") {
			t.Fatalf("database %q, want t_<unique>", name)
		}
		if _, err := db.Collection("things").InsertOne(ctx, bson.M{"_id": "a", "n": 1}); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		return // skipped: no MongoDB-compatible server
	}
	db := mongotest.Database(t, "CATALOG_MONGODB_URI")
	names, err := db.Client().ListDatabaseNames(ctx, bson.M{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("database %s still exists after the test", name)
	}
}
