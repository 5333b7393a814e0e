-- Seals: every event's content digest signed (Ed25519) by the service's
-- checkpoint key as it is appended, stored beside the event. Whoever can
-- write to the database but does not hold the key cannot make an event that
-- `trellis audit verify --public-key` accepts. NULL for events appended
-- before seals existed, or by a store given no key.
ALTER TABLE trellis.events ADD COLUMN seal bytea CHECK (seal IS NULL OR length(seal) = 68);

-- The append functions again, now storing the seal (same rules otherwise).
DROP FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea);
DROP FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea);

CREATE FUNCTION trellis.append_one(
    p_stream          text,
    p_expected        bigint,
    p_command_id      uuid,
    p_actor           text,
    p_correlation_id  uuid,
    p_causation_id    uuid,
    p_recorded_at     timestamptz,
    p_event_id        uuid,
    p_type            text,
    p_schema_version  integer,
    p_payload         jsonb,
    p_occurred_at     timestamptz,
    p_digest          bytea,
    p_request_hash    bytea,
    p_seal            bytea,
    OUT replayed      boolean,
    OUT head          bigint,
    OUT inserted      bigint
)
-- PL/pgSQL, not SQL: its statement's plan is cached for the session (a SQL
-- function's is made again at every call, which halved the append rate).
-- One row through OUT parameters, not a set: no tuple store per call.
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    WITH cmd AS (
        SELECT 1 FROM trellis.events e WHERE e.command_id = p_command_id AND e.command_first),
    cur_head AS (
        SELECT e.stream_version AS v, e.hash AS h FROM trellis.events e
        WHERE e.stream_id = p_stream ORDER BY e.stream_version DESC LIMIT 1),
    cur AS (
        SELECT coalesce((SELECT v FROM cur_head), 0::bigint) AS v,
               coalesce((SELECT h FROM cur_head),
                        '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS h),
    ins AS (
        INSERT INTO trellis.events AS e (event_id, stream_id, stream_version, event_type,
            schema_version, payload, actor, command_id, correlation_id, causation_id, occurred_at,
            recorded_at, prev_hash, hash, command_first, request_hash, seal)
        SELECT p_event_id, p_stream, cur.v + 1, p_type, p_schema_version, p_payload, p_actor,
               p_command_id, p_correlation_id, p_causation_id, p_occurred_at, p_recorded_at, cur.h,
               sha256(cur.h || int8send(cur.v + 1) || p_digest), true, p_request_hash, p_seal
        FROM cur
        WHERE NOT EXISTS (SELECT 1 FROM cmd) AND (p_expected < 0 OR p_expected = cur.v)
        ON CONFLICT (stream_id, stream_version) DO NOTHING
        RETURNING e.global_position)
    SELECT EXISTS (SELECT 1 FROM cmd), cur.v, (SELECT global_position FROM ins)
    INTO replayed, head, inserted
    FROM cur;
END;
$$;

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
    p_request_hash    bytea,
    p_seals           bytea[]
) RETURNS TABLE (outcome text, stream_version bigint, first_position bigint, last_position bigint,
                 request_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
            prev_hash, hash, command_first, request_hash, seal)
        SELECT u.event_id, p_stream, v_head + u.n, u.event_type, u.schema_version, u.payload,
               p_actor, p_command_id, p_correlation_id, p_causation_id, u.occurred_at, p_recorded_at,
               u.prev_hash, u.hash, u.n = 1, CASE WHEN u.n = 1 THEN p_request_hash END, u.seal
          FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads, p_occurred_at, v_prevs, v_hashes,
                      p_seals)
               WITH ORDINALITY AS u(event_id, event_type, schema_version, payload, occurred_at, prev_hash, hash,
                                    seal, n)
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

REVOKE ALL ON FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea, bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea, bytea) TO trellis_writer;
GRANT EXECUTE ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea, bytea[]) TO trellis_writer;

-- The Merkle tree over the whole log and the signed checkpoints of it
-- (crates/eventstore/src/merkle.rs, note.rs, tree.rs). Leaf i is the i-th
-- event in global order; a node is the hash of a complete, aligned subtree.
-- Nothing here is trusted by a verifier: `trellis audit verify` recomputes
-- the tree from the events and checks it against checkpoints kept outside
-- the database. These tables serve proofs and name where a log changed.

CREATE TABLE trellis.tree_nodes (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Which event each leaf is.
CREATE TABLE trellis.tree_leaves (
    leaf_index      bigint PRIMARY KEY CHECK (leaf_index >= 0),
    global_position bigint NOT NULL UNIQUE
);

-- Every signed checkpoint, as the signed note that was published.
CREATE TABLE trellis.tree_checkpoints (
    tree_size bigint      NOT NULL CHECK (tree_size >= 0),
    key_id    text        NOT NULL,
    signed_at timestamptz NOT NULL,
    note      text        NOT NULL,
    PRIMARY KEY (tree_size, key_id)
);

CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON trellis.tree_nodes
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON trellis.tree_nodes
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON trellis.tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_leaves_no_update BEFORE UPDATE ON trellis.tree_leaves
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_leaves_no_delete BEFORE DELETE ON trellis.tree_leaves
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_leaves_no_truncate BEFORE TRUNCATE ON trellis.tree_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_checkpoints_no_update BEFORE UPDATE ON trellis.tree_checkpoints
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_checkpoints_no_delete BEFORE DELETE ON trellis.tree_checkpoints
    FOR EACH ROW EXECUTE FUNCTION trellis.refuse_change();
CREATE TRIGGER tree_checkpoints_no_truncate BEFORE TRUNCATE ON trellis.tree_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION trellis.refuse_change();

REVOKE ALL ON trellis.tree_nodes, trellis.tree_leaves, trellis.tree_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON trellis.tree_nodes, trellis.tree_leaves, trellis.tree_checkpoints
    TO trellis_writer;
