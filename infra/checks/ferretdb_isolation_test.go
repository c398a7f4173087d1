package checks

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"polyshop/shared/testenv"
	"polyshop/shared/testenv/mongotest"
)

// TestFerretDBLetsOnlyTheCatalogIn: natively FerretDB keeps the catalog in PostgreSQL and
// passes each client's PLAIN credentials through, so the catalog's credentials read its
// data, while a client without credentials, with a wrong password, or with another
// service's PostgreSQL role reads nothing.
func TestFerretDBLetsOnlyTheCatalogIn(t *testing.T) {
	own := testenv.Getenv("CATALOG_MONGODB_URI")
	u, err := url.Parse(own)
	if err != nil {
		t.Fatal(err)
	}
	if u.User == nil {
		t.Fatalf("CATALOG_MONGODB_URI carries no credentials: FerretDB would be open to any local process")
	}
	ping := func(uri string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetServerSelectionTimeout(3*time.Second))
		if err != nil {
			return err
		}
		defer c.Disconnect(context.Background())
		_, err = c.Database(testenv.Getenv("CATALOG_MONGODB_DATABASE")).ListCollectionNames(ctx, bson.D{})
		return err
	}
	testenv.Require(t, "ferretdb", ping(own))

	with := func(user *url.Userinfo) string {
		v := *u
		v.User = user
		if user == nil {
			v.RawQuery = ""
		}
		return v.String()
	}
	for name, uri := range map[string]string{
		"no credentials":       with(nil),
		"wrong password":       with(url.UserPassword("catalog", "not-the-password")),
		"the users role":       with(url.UserPassword("users", testenv.Getenv("USERS_DB_PASSWORD"))),
		"the engine superuser": with(url.UserPassword(testenv.Getenv("POLYSHOP_PG_SUPERUSER"), "guess")),
	} {
		t.Run(name, func(t *testing.T) {
			err := ping(uri)
			if err == nil {
				t.Fatalf("%s read the catalog; want refused", name)
			}
			if !strings.Contains(err.Error(), "28P01") && !strings.Contains(err.Error(), "42501") &&
				!strings.Contains(strings.ToLower(err.Error()), "auth") {
				t.Errorf("%s: %v, want an authentication or permission refusal", name, err)
			}
		})
	}
}

// TestFerretDBServesIDLookupsFromAnIndex: FerretDB v1 passes an equality on _id down to
// PostgreSQL as a jsonb containment that its own btree index cannot serve; the native
// stack's event trigger (infra/ferretdb/pg-indexes.sql) gives every collection FerretDB
// creates a GIN index on _id that can, so a lookup by _id is not a scan of the collection.
// FerretDB's explain carries PostgreSQL's plan.
func TestFerretDBServesIDLookupsFromAnIndex(t *testing.T) {
	db := mongotest.Database(t, "CATALOG_MONGODB_URI") // a new database: its tables are new
	coll := db.Collection("things")
	ctx := context.Background()
	docs := make([]any, 3000)
	for i := range docs {
		docs[i] = bson.M{"_id": fmt.Sprintf("thing-%05d", i), "name": strings.Repeat("x", 200)}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	var out struct {
		FilterPushdown *bool `bson:"filterPushdown"`
		QueryPlanner   struct {
			Plan bson.M `bson:"Plan"`
		} `bson:"queryPlanner"`
	}
	err := db.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: "things"}, {Key: "filter", Value: bson.M{"_id": "thing-01234"}},
	}}}).Decode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if out.FilterPushdown == nil {
		t.Skip("not FerretDB: MongoDB serves _id from its own index")
	}
	plan := fmt.Sprint(out.QueryPlanner.Plan)
	if !strings.Contains(plan, "_id_gin") || strings.Contains(plan, "Seq Scan") {
		t.Errorf("lookup by _id: plan %s; want the _id GIN index, no sequential scan", plan)
	}
}
