-- Documents are large (a rep's growth timeline is ~100 KB of JSON) and a
-- rebuild writes all of them at once: compress them with lz4, several times
-- faster than the default pglz at about the same size. Existing values keep
-- their compression until rewritten. A server built without lz4 keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE trellis.read_models ALTER COLUMN doc SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'read_models.doc keeps the default compression: %', SQLERRM;
END
$$;
