-- Trace context: the W3C `traceparent` of the request that appended an
-- event (version 00: 00-<trace id>-<parent id>-<flags>), kept with the event
-- so that a subscriber continues the request's trace (the relay's CloudEvents
-- `traceparent` header). NULL for events appended before it existed or
-- without a trace. It is telemetry, not history: the hash chain, the seals
-- and the Merkle tree do not cover it (crates/eventstore/src/chain.rs), so
-- every hash, seal and checkpoint made before holds as it was.
--
-- A nullable column without a default is added without rewriting the
-- table; the CHECK is NOT VALID so that adding it does not scan the log
-- (every existing row is NULL). It holds for every row written from now on.
ALTER TABLE trellis.events ADD COLUMN traceparent text;
ALTER TABLE trellis.events ADD CONSTRAINT events_traceparent_w3c
    CHECK (traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$') NOT VALID;

-- The append functions again, now storing the traceparent (same rules
-- otherwise; the same grants and search_path as 0004 gave them). The new
-- last parameter defaults to NULL, so a process of the previous release
-- still running during a rolling upgrade keeps appending (untraced).
DROP FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea, bytea);
DROP FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea, bytea[]);

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
    p_traceparent     text DEFAULT NULL,
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
            recorded_at, prev_hash, hash, command_first, request_hash, seal, traceparent)
        SELECT p_event_id, p_stream, cur.v + 1, p_type, p_schema_version, p_payload, p_actor,
               p_command_id, p_correlation_id, p_causation_id, p_occurred_at, p_recorded_at, cur.h,
               sha256(cur.h || int8send(cur.v + 1) || p_digest), true, p_request_hash, p_seal,
               p_traceparent
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
    p_seals           bytea[],
    p_traceparent     text DEFAULT NULL
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
            prev_hash, hash, command_first, request_hash, seal, traceparent)
        SELECT u.event_id, p_stream, v_head + u.n, u.event_type, u.schema_version, u.payload,
               p_actor, p_command_id, p_correlation_id, p_causation_id, u.occurred_at, p_recorded_at,
               u.prev_hash, u.hash, u.n = 1, CASE WHEN u.n = 1 THEN p_request_hash END, u.seal,
               p_traceparent
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
    bytea, bytea, bytea, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea, bytea[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea, bytea, text) TO trellis_writer;
GRANT EXECUTE ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea, bytea[], text) TO trellis_writer;
