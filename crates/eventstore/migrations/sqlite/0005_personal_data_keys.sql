-- Personal data keys (crypto-shredding): one key per person, outside the
-- log; erased (NULL) when the person's personal data is erased, and never
-- brought back or deleted. See the PostgreSQL migration of the same name.
-- The file is opened with `secure_delete`, so an erased key's bytes are
-- overwritten, not left in a free page.
CREATE TABLE personal_data_keys (
    person     TEXT    PRIMARY KEY,
    data_key   BLOB    CHECK (data_key IS NULL OR length(data_key) = 32),
    created_at INTEGER NOT NULL,
    erased_at  INTEGER,
    CHECK ((data_key IS NULL) = (erased_at IS NOT NULL))
);

CREATE TRIGGER personal_data_keys_never_deleted BEFORE DELETE ON personal_data_keys
BEGIN
    SELECT RAISE(ABORT, 'personal data keys are never deleted: erase one instead');
END;

CREATE TRIGGER personal_data_keys_stay_erased BEFORE UPDATE ON personal_data_keys
    WHEN OLD.erased_at IS NOT NULL
      OR (OLD.data_key IS NOT NULL AND NEW.data_key IS NOT NULL AND NEW.data_key <> OLD.data_key)
BEGIN
    SELECT RAISE(ABORT, 'an erased data key cannot be brought back, nor a key replaced');
END;
