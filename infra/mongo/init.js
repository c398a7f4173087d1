// Runs once in the official mongo image (docker-entrypoint-initdb.d), as the root user from
// MONGO_INITDB_ROOT_USERNAME: creates the catalog service's own user, limited to its database.
const catalogDB = process.env.CATALOG_MONGODB_DATABASE || "catalog";
const catalogPassword = process.env.CATALOG_MONGODB_PASSWORD;
if (!catalogPassword) throw new Error("CATALOG_MONGODB_PASSWORD is not set");
const target = db.getSiblingDB(catalogDB);
if (!target.getUser("catalog")) {
  target.createUser({ user: "catalog", pwd: catalogPassword, roles: [{ role: "readWrite", db: catalogDB }] });
}
