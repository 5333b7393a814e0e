-- Documents are written whole by the projections and read whole by the
-- service; nothing in the service looks inside one in SQL. As `jsonb`, every
-- document was parsed into a tree and its keys sorted when written, and
-- printed back to text when read: a rebuild writes about 1.4 KB of documents
-- per event, and a team page reads each member's recent timeline. As `json`,
-- the server only checks that the text is JSON, keeps it as written (keys in
-- the order of the document's fields) and hands it back as stored: on this
-- project's benchmark machine, COPY of a rebuild's documents took 10.3 s
-- instead of 16.3 s, and reading them 2.7 s instead of 7.5 s.
--
-- Changing the type rewrites the table under an exclusive lock, and the
-- documents it converts are printed the way `jsonb` prints them; the growth
-- projection's code version moves with this release, so its documents are
-- rebuilt in the new form once the new projector starts. Old processes must
-- be stopped first: their rebuilds send `jsonb`'s binary form, which a `json`
-- column refuses (docs/operations.md, Upgrades).
--
-- The analysts' views keep their `jsonb` columns: `active_read_models`
-- parses each document once per row (the lateral subquery with OFFSET 0
-- keeps the planner from copying the cast into every column that reads it).
-- Every view is dropped and made again as it was, since a column that views
-- read cannot change type; grants made on them by hand must be made again.
DROP VIEW trellis.standards, trellis.teams, trellis.growth_timeline_standards,
          trellis.growth_timeline, trellis.rep_profiles, trellis.active_read_models;

-- The rewrite compresses with the session's default; lz4 where the server
-- has it (as migration 0002 chose for the column).
DO $$
BEGIN
    SET LOCAL default_toast_compression = 'lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'read_models.doc keeps the default compression: %', SQLERRM;
END
$$;

ALTER TABLE trellis.read_models ALTER COLUMN doc TYPE json USING doc::json;

DO $$
BEGIN
    EXECUTE 'ALTER TABLE trellis.read_models ALTER COLUMN doc SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'read_models.doc keeps the default compression: %', SQLERRM;
END
$$;

CREATE VIEW trellis.active_read_models AS
SELECT r.model, r.kind, r.key, d.doc
  FROM trellis.read_models r
  JOIN trellis.projection_checkpoints c
    ON c.model = r.model AND c.generation = r.generation AND c.status = 'active'
 CROSS JOIN LATERAL (SELECT r.doc::jsonb AS doc OFFSET 0) AS d;

CREATE VIEW trellis.rep_profiles AS
SELECT (doc->>'rep_id')::uuid                          AS rep_id,
       doc->>'name'                                    AS name,
       (doc->>'team_id')::uuid                         AS team_id,
       doc->>'role'                                    AS role,
       (doc->>'start_date')::date                      AS start_date,
       doc->>'status'                                  AS status,
       (doc->>'departed_on')::date                     AS departed_on,
       doc->'standing'->>'standing'                    AS standing,
       doc->'standing'->'reasons'                      AS standing_reasons,
       doc->'phase'->>'phase'                          AS phase,
       (doc->'phase'->>'quality_gate_passed_on')::date AS quality_gate_passed_on,
       (doc->>'last_coached_on')::date                 AS last_coached_on,
       (doc->>'coaching_sessions')::integer            AS coaching_sessions,
       jsonb_array_length(doc->'open_action_items')    AS open_action_items,
       (SELECT count(*) FROM jsonb_array_elements(doc->'support_requests') s
         WHERE s->>'resolved_on' IS NULL)::integer     AS open_support_requests,
       (doc->'open_plan'->>'plan_id')::uuid            AS open_plan_id,
       doc->'levels'                                   AS levels
  FROM trellis.active_read_models
 WHERE model = 'growth' AND kind = 'rep_profile';

CREATE VIEW trellis.growth_timeline AS
SELECT (t.doc->>'rep_id')::uuid                  AS rep_id,
       b.bucket,
       p->>'period'                              AS period,
       (p->>'start')::date                       AS period_start,
       (p->>'end')::date                         AS period_end,
       (p->>'period_index')::integer             AS period_index,
       p->>'role'                                AS role,
       (p->>'team_id')::uuid                     AS team_id,
       (p->>'quality_attainment')::float8        AS quality_attainment,
       (p->>'quantity_attainment')::float8       AS quantity_attainment,
       (p->>'behaviour_attainment')::float8      AS behaviour_attainment,
       (p->>'coaching_sessions')::integer        AS coaching_sessions,
       (p->>'coaching_minutes')::integer         AS coaching_minutes,
       (p->>'action_items_due')::integer         AS action_items_due,
       (p->>'action_items_completed')::integer   AS action_items_completed,
       (p->>'action_items_completed_on_time')::integer AS action_items_completed_on_time,
       jsonb_array_length(p->'trainings_completed') AS trainings_completed,
       p->'levels'                               AS levels,
       p->'feedback'                             AS feedback
  FROM trellis.active_read_models t
 CROSS JOIN LATERAL (VALUES ('week', t.doc->'weeks'), ('month', t.doc->'months'),
                            ('quarter', t.doc->'quarters')) AS b(bucket, rows)
 CROSS JOIN LATERAL jsonb_array_elements(b.rows) AS p
 WHERE t.model = 'growth' AND t.kind = 'growth_timeline';

CREATE VIEW trellis.growth_timeline_standards AS
SELECT (t.doc->>'rep_id')::uuid       AS rep_id,
       b.bucket,
       p->>'period'                   AS period,
       (s->>'standard_id')::uuid      AS standard_id,
       s->>'name'                     AS standard_name,
       s->>'metric'                   AS metric,
       s->>'kind'                     AS kind,
       (s->>'applies')::boolean       AS applies,
       (s->>'version')::integer       AS version,
       (s->>'actual')::float8         AS actual,
       (s->>'full_target')::float8    AS full_target,
       (s->>'target')::float8         AS target,
       (s->>'ramp_percent')::integer  AS ramp_percent,
       (s->>'attainment')::float8     AS attainment
  FROM trellis.active_read_models t
 CROSS JOIN LATERAL (VALUES ('week', t.doc->'weeks'), ('month', t.doc->'months'),
                            ('quarter', t.doc->'quarters')) AS b(bucket, rows)
 CROSS JOIN LATERAL jsonb_array_elements(b.rows) AS p
 CROSS JOIN LATERAL jsonb_array_elements(p->'standards') AS s
 WHERE t.model = 'growth' AND t.kind = 'growth_timeline';

CREATE VIEW trellis.teams AS
SELECT (doc->>'team_id')::uuid AS team_id, doc->>'name' AS name,
       doc->'leaders' AS leaders, jsonb_array_length(doc->'reps') AS reps_ever
  FROM trellis.active_read_models
 WHERE model = 'growth' AND kind = 'team';

CREATE VIEW trellis.standards AS
SELECT (doc->>'standard_id')::uuid AS standard_id, doc->>'name' AS name,
       doc->>'metric' AS metric, doc->>'kind' AS kind, doc->>'direction' AS direction,
       doc->>'unit' AS unit, doc->>'period' AS period,
       (doc->>'retired_from')::date AS retired_from, doc->'versions' AS versions
  FROM trellis.active_read_models
 WHERE model = 'growth' AND kind = 'standard';
