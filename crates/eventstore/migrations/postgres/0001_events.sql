-- The Trellis event log. Applied once per database by the migration runner,
-- inside a transaction that holds an advisory lock.

CREATE SCHEMA IF NOT EXISTS trellis;

-- The append-only log. One row per event.
CREATE TABLE trellis.events (
    -- Unique, increasing in insert order; may have gaps (rolled-back appends).
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    -- 1 for the stream's first event, contiguous after that.
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    actor           text        NOT NULL,
    command_id      uuid        NOT NULL,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    -- Business time: when the fact happened.
    occurred_at     timestamptz NOT NULL,
    -- Recorded time: when the log learned of it.
    recorded_at     timestamptz NOT NULL,
    -- sha256(prev_hash || int8send(stream_version) || content digest).
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    -- The writing transaction. Readers of the global log order by
    -- (tx_id, global_position) and only read below the oldest running
    -- transaction, so an out-of-order commit is never skipped
    -- (docs/adr/0001-global-order.md).
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- True on the first event of each command: a command id is recorded once
    -- (the unique index below), so a retried command records nothing.
    command_first   boolean     NOT NULL DEFAULT false,
    -- On the first event of a command: a fingerprint of the request that
    -- carried it (the SHA-256 of an HTTP body), so a retry with a different
    -- request under the same command id can be told apart from a true retry.
    -- Not part of the event (nor of its hash).
    request_hash    bytea,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_global_order ON trellis.events (tx_id, global_position);
CREATE UNIQUE INDEX events_command ON trellis.events (command_id) WHERE command_first;

COMMENT ON TABLE trellis.events IS
    'The Trellis event log: append-only (UPDATE, DELETE and TRUNCATE are refused), hash-chained per stream.';

-- Append-only, enforced by the database itself.
CREATE FUNCTION trellis.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trellis.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Record a correction as a new event instead of changing the log.';
END;
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON trellis.events
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER events_no_delete BEFORE DELETE ON trellis.events
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON trellis.events
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();

-- Appends a batch of events to one stream in one round trip: idempotency by
-- command id, the expected-version check, the hash chain and the insert.
-- (A single event takes a faster path: one SQL statement sent by the store,
-- with the same rules; see src/postgres/mod.rs.)
-- It does not NOTIFY: a NOTIFY takes a cluster-wide lock at commit that
-- serialises every notifying transaction's WAL flush (measured: 8 writers
-- slower than 1). The store sends one coalesced NOTIFY after appends instead.
-- p_expected < 0 means "any version". Returns one row:
--   outcome 'appended' | 'replayed' | 'conflict', and the stream version
--   (the current one, for a conflict) with the first and last positions, and
--   the request hash recorded with the command (the first one, for a replay).
-- Raises serialization_failure (40001) when a concurrent append interleaved;
-- a concurrent append of the same command id fails on events_command (23505).
-- The caller calls again and gets 'replayed'.
CREATE FUNCTION trellis.append_events(
    p_stream          text,
    p_expected        bigint,
    p_command_id      uuid,
    p_actor           text,
    p_correlation_id  uuid,
    p_causation_id    uuid,
    p_recorded_at     timestamptz,
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_payloads        jsonb[],
    p_occurred_at     timestamptz[],
    p_digests         bytea[],
    p_request_hash    bytea
) RETURNS TABLE (outcome text, stream_version bigint, first_position bigint, last_position bigint,
                 request_hash bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_stream   text;
    v_hash     bytea;
    v_head     bigint;
    v_prev     bytea;
    v_n        integer := cardinality(p_event_ids);
    v_prevs    bytea[] := '{}';
    v_hashes   bytea[] := '{}';
    v_inserted integer;
    v_first    bigint;
    v_last     bigint;
BEGIN
    SELECT e.stream_id, e.request_hash INTO v_stream, v_hash
      FROM trellis.events e WHERE e.command_id = p_command_id AND e.command_first;
    IF FOUND THEN
        RETURN QUERY
            SELECT 'replayed'::text, max(e.stream_version), min(e.global_position), max(e.global_position), v_hash
              FROM trellis.events e WHERE e.stream_id = v_stream AND e.command_id = p_command_id;
        RETURN;
    END IF;

    SELECT e.stream_version, e.hash INTO v_head, v_prev
      FROM trellis.events e
     WHERE e.stream_id = p_stream
     ORDER BY e.stream_version DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_head := 0;
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    END IF;

    IF p_expected >= 0 AND p_expected <> v_head THEN
        RETURN QUERY SELECT 'conflict'::text, v_head, NULL::bigint, NULL::bigint, NULL::bytea;
        RETURN;
    END IF;

    FOR i IN 1 .. v_n LOOP
        v_prevs := v_prevs || v_prev;
        v_prev := sha256(v_prev || int8send(v_head + i) || p_digests[i]);
        v_hashes := v_hashes || v_prev;
    END LOOP;

    WITH ins AS (
        INSERT INTO trellis.events AS e (
            event_id, stream_id, stream_version, event_type, schema_version, payload,
            actor, command_id, correlation_id, causation_id, occurred_at, recorded_at,
            prev_hash, hash, command_first, request_hash)
        SELECT u.event_id, p_stream, v_head + u.n, u.event_type, u.schema_version, u.payload,
               p_actor, p_command_id, p_correlation_id, p_causation_id, u.occurred_at, p_recorded_at,
               u.prev_hash, u.hash, u.n = 1, CASE WHEN u.n = 1 THEN p_request_hash END
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_occurred_at, v_prevs, v_hashes)
               WITH ORDINALITY AS u(event_id, event_type, schema_version, payload, occurred_at, prev_hash, hash, n)
         ORDER BY u.n
        ON CONFLICT (stream_id, stream_version) DO NOTHING
        RETURNING e.global_position
    )
    SELECT count(*), min(ins.global_position), max(ins.global_position)
      INTO v_inserted, v_first, v_last
      FROM ins;

    IF v_inserted = 0 THEN
        -- A concurrent append to the stream committed first.
        SELECT max(e.stream_version) INTO v_head FROM trellis.events e WHERE e.stream_id = p_stream;
        RETURN QUERY SELECT 'conflict'::text, coalesce(v_head, 0), NULL::bigint, NULL::bigint, NULL::bytea;
        RETURN;
    ELSIF v_inserted < v_n THEN
        RAISE EXCEPTION 'concurrent append to stream % interleaved with this one', p_stream
            USING ERRCODE = 'serialization_failure';
    END IF;

    RETURN QUERY SELECT 'appended'::text, v_head + v_n, v_first, v_last, p_request_hash;
END;
$$;

-- The role a Trellis service runs as: it may read and append, never change.
-- Roles are cluster-wide, so this tolerates another database having made it.
DO $$
BEGIN
    CREATE ROLE trellis_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

REVOKE ALL ON trellis.events FROM PUBLIC;
GRANT USAGE ON SCHEMA trellis TO trellis_writer;
GRANT SELECT, INSERT ON trellis.events TO trellis_writer;
GRANT EXECUTE ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea) TO trellis_writer;
