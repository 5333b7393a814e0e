-- Documents are text: the projections serialize them with serde_json and
-- the service reads them back whole, so the server's check that each one is
-- JSON (migration 0004's `json`) checked our own serializer on every write.
-- That check was the largest single cost of a rebuild's write phase on
-- PostgreSQL: `json_lex` took about a quarter of the server's time while
-- the documents were copied in (`perf`, `trellis-bench replay`).
--
-- The analysts' views keep their `jsonb` columns: only `active_read_models`
-- reads the column, and it casts to `jsonb` once per row, as before. It is
-- pointed away from the column while its type changes (a view's columns
-- keep their types, so the views that read it stay as they are, and so do
-- grants made on them), then back.

CREATE OR REPLACE VIEW trellis.active_read_models AS
SELECT r.model, r.kind, r.key, NULL::jsonb AS doc
  FROM trellis.read_models r
  JOIN trellis.projection_checkpoints c
    ON c.model = r.model AND c.generation = r.generation AND c.status = 'active';

-- The rewrite compresses with the session's default; lz4 where the server
-- has it (as migration 0002 chose for the column).
DO $$
BEGIN
    SET LOCAL default_toast_compression = 'lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'read_models.doc keeps the default compression: %', SQLERRM;
END
$$;

ALTER TABLE trellis.read_models ALTER COLUMN doc TYPE text USING doc::text;

DO $$
BEGIN
    EXECUTE 'ALTER TABLE trellis.read_models ALTER COLUMN doc SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'read_models.doc keeps the default compression: %', SQLERRM;
END
$$;

CREATE OR REPLACE VIEW trellis.active_read_models AS
SELECT r.model, r.kind, r.key, d.doc
  FROM trellis.read_models r
  JOIN trellis.projection_checkpoints c
    ON c.model = r.model AND c.generation = r.generation AND c.status = 'active'
 CROSS JOIN LATERAL (SELECT r.doc::jsonb AS doc OFFSET 0) AS d;
