-- Personal data keys (crypto-shredding, crates/eventstore/src/vault.rs): one
-- XChaCha20-Poly1305 key per person, with which their name and the free
-- text about them are encrypted in the log. Kept here, beside the log and
-- never in it: destroying a person's key erases their personal data while
-- every event, hash, seal and checkpoint stays as it was.
--
-- A key is made once and only ever destroyed: the service role may read
-- and add keys, and may erase one only through trellis.erase_data_key,
-- which sets it to NULL for good. No role of the service may delete a row
-- (the row that remains says when the person was erased, and refuses new
-- personal data about them).
CREATE TABLE trellis.personal_data_keys (
    person     uuid        PRIMARY KEY,
    data_key   bytea       CHECK (data_key IS NULL OR length(data_key) = 32),
    created_at timestamptz NOT NULL,
    erased_at  timestamptz,
    CHECK ((data_key IS NULL) = (erased_at IS NOT NULL))
);

COMMENT ON TABLE trellis.personal_data_keys IS
    'One data key per person, outside the log; erased (NULL) when the person''s personal data is erased.';

-- A key, once erased, stays erased; a row is never deleted.
CREATE FUNCTION trellis.refuse_key_revival() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'personal data keys are never deleted: erase one with trellis.erase_data_key'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.erased_at IS NOT NULL AND (NEW.data_key IS NOT NULL OR NEW.erased_at IS DISTINCT FROM OLD.erased_at) THEN
        RAISE EXCEPTION 'the data key of % was erased on %; it cannot be brought back', OLD.person, OLD.erased_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.data_key IS NOT NULL AND NEW.data_key IS NOT NULL AND NEW.data_key <> OLD.data_key THEN
        RAISE EXCEPTION 'the data key of % cannot be replaced', OLD.person
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER personal_data_keys_keep
    BEFORE UPDATE OR DELETE ON trellis.personal_data_keys
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_key_revival();

-- Erases a person's key (or records that they have none to have): returns
-- when it was erased (the first time, when called again).
CREATE FUNCTION trellis.erase_data_key(p_person uuid, p_at timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_at timestamptz;
BEGIN
    INSERT INTO trellis.personal_data_keys AS k (person, data_key, created_at, erased_at)
    VALUES (p_person, NULL, p_at, p_at)
    ON CONFLICT (person) DO UPDATE SET data_key = NULL, erased_at = p_at
        WHERE k.erased_at IS NULL;
    SELECT k.erased_at INTO v_at FROM trellis.personal_data_keys k WHERE k.person = p_person;
    RETURN v_at;
END;
$$;

REVOKE ALL ON FUNCTION trellis.erase_data_key(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trellis.erase_data_key(uuid, timestamptz) TO trellis_writer;
GRANT SELECT, INSERT ON trellis.personal_data_keys TO trellis_writer;
