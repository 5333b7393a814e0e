-- Read models of the projections, next to the log (schema trellis).
-- Applied by trellis-projections on start, under an advisory lock.

-- One row per projection generation: the generation being served (active),
-- one being rebuilt (building), and old ones waiting to be dropped (retired).
-- The checkpoint is where the generation's documents stand in the log; it is
-- updated in the same transaction as the documents.
CREATE TABLE trellis.projection_checkpoints (
    model               text        NOT NULL,
    generation          integer     NOT NULL,
    -- The code and settings that built it; a runner with another rebuilds.
    fingerprint         text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('building', 'active', 'retired')),
    checkpoint_tx       bigint      NOT NULL DEFAULT 0,
    checkpoint_position bigint      NOT NULL DEFAULT 0,
    events_applied      bigint      NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    PRIMARY KEY (model, generation)
);

CREATE UNIQUE INDEX projection_checkpoints_one_active
    ON trellis.projection_checkpoints (model) WHERE status = 'active';

-- Every document of every generation. `kind` is the read model
-- (rep_profile, growth_timeline, …), `key` the entity's id.
CREATE TABLE trellis.read_models (
    model      text    NOT NULL,
    generation integer NOT NULL,
    kind       text    NOT NULL,
    key        text    NOT NULL,
    doc        jsonb   NOT NULL,
    PRIMARY KEY (model, generation, kind, key)
);

COMMENT ON TABLE trellis.read_models IS
    'Documents of the projections (see crates/projections/README.md). Query the views, which show the active generation only.';

-- The documents being served.
CREATE VIEW trellis.active_read_models AS
SELECT r.model, r.kind, r.key, r.doc
  FROM trellis.read_models r
  JOIN trellis.projection_checkpoints c
    ON c.model = r.model AND c.generation = r.generation AND c.status = 'active';

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
