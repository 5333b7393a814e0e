-- Append only through the append functions: the runtime role (trellis_writer)
-- loses INSERT on the log, and the functions that append run with their
-- owner's rights (SECURITY DEFINER). A login role that is a member of
-- trellis_writer can then only add events the way Trellis does — with the
-- expected-version check, idempotency by command id and the hash chain
-- computed by the database from the stream's head — never a row of its own
-- making.

-- One event, one statement: the hot path of every command (what the store
-- sent as a statement before, now a function so that it runs as the owner).
-- Returns whether the command was recorded before, the stream's head as it
-- was read, and the new event's position (none when nothing was inserted:
-- a stale expected version, or a lost race for the next version).
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
            recorded_at, prev_hash, hash, command_first, request_hash)
        SELECT p_event_id, p_stream, cur.v + 1, p_type, p_schema_version, p_payload, p_actor,
               p_command_id, p_correlation_id, p_causation_id, p_occurred_at, p_recorded_at, cur.h,
               sha256(cur.h || int8send(cur.v + 1) || p_digest), true, p_request_hash
        FROM cur
        WHERE NOT EXISTS (SELECT 1 FROM cmd) AND (p_expected < 0 OR p_expected = cur.v)
        ON CONFLICT (stream_id, stream_version) DO NOTHING
        RETURNING e.global_position)
    SELECT EXISTS (SELECT 1 FROM cmd), cur.v, (SELECT global_position FROM ins)
    INTO replayed, head, inserted
    FROM cur;
END;
$$;

ALTER FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trellis.append_one(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid, text, integer, jsonb, timestamptz,
    bytea, bytea) TO trellis_writer;
GRANT EXECUTE ON FUNCTION trellis.append_events(
    text, bigint, uuid, text, uuid, uuid, timestamptz, uuid[], text[], integer[], jsonb[],
    timestamptz[], bytea[], bytea) TO trellis_writer;

REVOKE INSERT ON trellis.events FROM trellis_writer;

