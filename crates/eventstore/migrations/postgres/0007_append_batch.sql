-- A group commit's one-event commands in one statement (ADR 9): the same
-- rules as trellis.append_one for each command (command id recorded once,
-- expected version, hash chain from the stream's head), but one function
-- call, one plan and one INSERT for the whole batch instead of one of each
-- per command. On this 2-core server a trellis append was bound by CPU, and
-- most of a command's CPU was the statement around its row, not the row.
--
-- The i-th element of every array belongs to the i-th command. The streams
-- must differ from one another (the caller sends a stream's later commands
-- after this call, where they see its writes). Each command gets one row
-- back, in order: whether its command id was recorded before, its stream's
-- head as read, and its event's position (none when nothing was inserted:
-- replayed, a stale expected version, or a lost race for the next version).
-- A command's failure to insert touches no other command; a statement that
-- fails (a command id or event id sent twice) writes nothing, and the
-- caller then appends each command alone.
CREATE FUNCTION trellis.append_batch(
    p_streams         text[],
    p_expected        bigint[],
    p_command_ids     uuid[],
    p_actors          text[],
    p_correlation_ids uuid[],
    p_causation_ids   uuid[],
    p_recorded_at     timestamptz[],
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions integer[],
    p_payloads        jsonb[],
    p_occurred_at     timestamptz[],
    p_digests         bytea[],
    p_request_hashes  bytea[],
    p_seals           bytea[],
    p_traceparents    text[]
) RETURNS TABLE (replayed boolean, head bigint, inserted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH c AS (
        SELECT * FROM unnest(p_streams, p_expected, p_command_ids, p_actors, p_correlation_ids,
                             p_causation_ids, p_recorded_at, p_event_ids, p_types, p_schema_versions,
                             p_payloads, p_occurred_at, p_digests, p_request_hashes, p_seals,
                             p_traceparents)
            WITH ORDINALITY AS c(stream, expected, command_id, actor, correlation_id, causation_id,
                                 recorded_at, event_id, event_type, schema_version, payload,
                                 occurred_at, digest, request_hash, seal, traceparent, n)),
    cur AS (
        SELECT c.*,
               EXISTS (SELECT 1 FROM trellis.events e
                        WHERE e.command_id = c.command_id AND e.command_first) AS was_recorded,
               coalesce(h.v, 0::bigint) AS v,
               coalesce(h.h, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS h
          FROM c
          LEFT JOIN LATERAL (
              SELECT e.stream_version AS v, e.hash AS h FROM trellis.events e
               WHERE e.stream_id = c.stream ORDER BY e.stream_version DESC LIMIT 1) h ON true),
    ins AS (
        INSERT INTO trellis.events AS e (event_id, stream_id, stream_version, event_type,
            schema_version, payload, actor, command_id, correlation_id, causation_id, occurred_at,
            recorded_at, prev_hash, hash, command_first, request_hash, seal, traceparent)
        SELECT cur.event_id, cur.stream, cur.v + 1, cur.event_type, cur.schema_version, cur.payload,
               cur.actor, cur.command_id, cur.correlation_id, cur.causation_id, cur.occurred_at,
               cur.recorded_at, cur.h, sha256(cur.h || int8send(cur.v + 1) || cur.digest), true,
               cur.request_hash, cur.seal, cur.traceparent
          FROM cur
         WHERE NOT cur.was_recorded AND (cur.expected < 0 OR cur.expected = cur.v)
         ORDER BY cur.n
        ON CONFLICT (stream_id, stream_version) DO NOTHING
        RETURNING e.stream_id, e.global_position)
    SELECT cur.was_recorded, cur.v, ins.global_position
      FROM cur LEFT JOIN ins ON ins.stream_id = cur.stream
     ORDER BY cur.n;
END;
$$;

REVOKE ALL ON FUNCTION trellis.append_batch(
    text[], bigint[], uuid[], text[], uuid[], uuid[], timestamptz[], uuid[], text[], integer[],
    jsonb[], timestamptz[], bytea[], bytea[], bytea[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION trellis.append_batch(
    text[], bigint[], uuid[], text[], uuid[], uuid[], timestamptz[], uuid[], text[], integer[],
    jsonb[], timestamptz[], bytea[], bytea[], bytea[], text[]) TO trellis_writer;
