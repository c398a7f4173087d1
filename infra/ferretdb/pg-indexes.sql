-- Indexes FerretDB v1 cannot ask for, in the catalog's PostgreSQL database (applied by
-- scripts/lib/engine-ferretdb.sh as the PostgreSQL superuser, at every start; idempotent).
--
-- FerretDB v1 passes a filter's equality on _id down to PostgreSQL as a containment,
--     _jsonb->'_id' @> '"<id>"'
-- which the unique btree index FerretDB makes on (_jsonb->'_id') cannot serve: every read,
-- update and delete by _id was a sequential scan of the collection (20 ms at 11,000
-- products, and PostgreSQL at 60% of a core for 10 product changes a second). A GIN index
-- on the same expression serves the containment (0.5 ms). An event trigger adds it to every
-- table FerretDB creates from now on (a collection is a table with a _jsonb column, in the
-- schema named after its database); the DO block below adds it to the tables that exist.
-- The trigger runs as the role that creates the table (the catalog's, which owns it); an
-- error is a warning, never a failed collection.

CREATE OR REPLACE FUNCTION public.polyshop_ferretdb_id_index(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	rel pg_class;
BEGIN
	SELECT * INTO rel FROM pg_class WHERE oid = tbl;
	IF rel.relkind <> 'r' OR NOT EXISTS (
		SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = '_jsonb' AND NOT attisdropped) THEN
		RETURN;
	END IF;
	EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb->''_id'') jsonb_path_ops)',
		left(rel.relname, 50) || '_id_gin', tbl);
EXCEPTION WHEN others THEN
	RAISE WARNING 'polyshop: no _id containment index on %: %', tbl, SQLERRM;
END $$;

CREATE OR REPLACE FUNCTION public.polyshop_ferretdb_id_index_trigger() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands()
		WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
		PERFORM public.polyshop_ferretdb_id_index(r.objid::regclass);
	END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS polyshop_ferretdb_id_index;
CREATE EVENT TRIGGER polyshop_ferretdb_id_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
	EXECUTE FUNCTION public.polyshop_ferretdb_id_index_trigger();

DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT a.attrelid::regclass FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE a.attname = '_jsonb' AND NOT a.attisdropped AND c.relkind = 'r'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') LOOP
		PERFORM public.polyshop_ferretdb_id_index(t);
	END LOOP;
END $$;
