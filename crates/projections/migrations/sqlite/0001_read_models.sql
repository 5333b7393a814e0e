-- Read models of the projections, in the embedded file next to the log.
-- Same tables and views as PostgreSQL's (schema trellis), JSON as text.

CREATE TABLE projection_checkpoints (
    model               TEXT    NOT NULL,
    generation          INTEGER NOT NULL,
    fingerprint         TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('building', 'active', 'retired')),
    checkpoint_tx       INTEGER NOT NULL DEFAULT 0,
    checkpoint_position INTEGER NOT NULL DEFAULT 0,
    events_applied      INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    activated_at        TEXT,
    PRIMARY KEY (model, generation)
);

CREATE UNIQUE INDEX projection_checkpoints_one_active
    ON projection_checkpoints (model) WHERE status = 'active';

CREATE TABLE read_models (
    model      TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    doc        TEXT    NOT NULL,
    PRIMARY KEY (model, generation, kind, key)
) WITHOUT ROWID;

CREATE VIEW active_read_models AS
SELECT r.model, r.kind, r.key, r.doc
  FROM read_models r
  JOIN projection_checkpoints c
    ON c.model = r.model AND c.generation = r.generation AND c.status = 'active';

CREATE VIEW rep_profiles AS
SELECT json_extract(doc, '$.rep_id')                       AS rep_id,
       json_extract(doc, '$.name')                         AS name,
       json_extract(doc, '$.team_id')                      AS team_id,
       json_extract(doc, '$.role')                         AS role,
       json_extract(doc, '$.start_date')                   AS start_date,
       json_extract(doc, '$.status')                       AS status,
       json_extract(doc, '$.departed_on')                  AS departed_on,
       json_extract(doc, '$.standing.standing')            AS standing,
       json_extract(doc, '$.standing.reasons')             AS standing_reasons,
       json_extract(doc, '$.phase.phase')                  AS phase,
       json_extract(doc, '$.phase.quality_gate_passed_on') AS quality_gate_passed_on,
       json_extract(doc, '$.last_coached_on')              AS last_coached_on,
       json_extract(doc, '$.coaching_sessions')            AS coaching_sessions,
       json_array_length(doc, '$.open_action_items')       AS open_action_items,
       (SELECT count(*) FROM json_each(doc, '$.support_requests') s
         WHERE json_extract(s.value, '$.resolved_on') IS NULL) AS open_support_requests,
       json_extract(doc, '$.open_plan.plan_id')            AS open_plan_id,
       json_extract(doc, '$.levels')                       AS levels
  FROM active_read_models
 WHERE model = 'growth' AND kind = 'rep_profile';

CREATE VIEW growth_timeline AS
SELECT json_extract(t.doc, '$.rep_id')                    AS rep_id,
       b.bucket,
       json_extract(p.value, '$.period')                  AS period,
       json_extract(p.value, '$.start')                   AS period_start,
       json_extract(p.value, '$.end')                     AS period_end,
       json_extract(p.value, '$.period_index')            AS period_index,
       json_extract(p.value, '$.role')                    AS role,
       json_extract(p.value, '$.team_id')                 AS team_id,
       json_extract(p.value, '$.quality_attainment')      AS quality_attainment,
       json_extract(p.value, '$.quantity_attainment')     AS quantity_attainment,
       json_extract(p.value, '$.behaviour_attainment')    AS behaviour_attainment,
       json_extract(p.value, '$.coaching_sessions')       AS coaching_sessions,
       json_extract(p.value, '$.coaching_minutes')        AS coaching_minutes,
       json_extract(p.value, '$.action_items_due')        AS action_items_due,
       json_extract(p.value, '$.action_items_completed')  AS action_items_completed,
       json_extract(p.value, '$.action_items_completed_on_time') AS action_items_completed_on_time,
       json_array_length(p.value, '$.trainings_completed') AS trainings_completed,
       json_extract(p.value, '$.levels')                  AS levels,
       json_extract(p.value, '$.feedback')                AS feedback
  FROM active_read_models t
  JOIN (SELECT 'week' AS bucket, '$.weeks' AS path UNION ALL
        SELECT 'month', '$.months' UNION ALL SELECT 'quarter', '$.quarters') b
  JOIN json_each(t.doc, b.path) p
 WHERE t.model = 'growth' AND t.kind = 'growth_timeline';

CREATE VIEW growth_timeline_standards AS
SELECT json_extract(t.doc, '$.rep_id')          AS rep_id,
       b.bucket,
       json_extract(p.value, '$.period')        AS period,
       json_extract(s.value, '$.standard_id')   AS standard_id,
       json_extract(s.value, '$.name')          AS standard_name,
       json_extract(s.value, '$.metric')        AS metric,
       json_extract(s.value, '$.kind')          AS kind,
       json_extract(s.value, '$.applies')       AS applies,
       json_extract(s.value, '$.version')       AS version,
       json_extract(s.value, '$.actual')        AS actual,
       json_extract(s.value, '$.full_target')   AS full_target,
       json_extract(s.value, '$.target')        AS target,
       json_extract(s.value, '$.ramp_percent')  AS ramp_percent,
       json_extract(s.value, '$.attainment')    AS attainment
  FROM active_read_models t
  JOIN (SELECT 'week' AS bucket, '$.weeks' AS path UNION ALL
        SELECT 'month', '$.months' UNION ALL SELECT 'quarter', '$.quarters') b
  JOIN json_each(t.doc, b.path) p
  JOIN json_each(p.value, '$.standards') s
 WHERE t.model = 'growth' AND t.kind = 'growth_timeline';

CREATE VIEW teams AS
SELECT json_extract(doc, '$.team_id') AS team_id, json_extract(doc, '$.name') AS name,
       json_extract(doc, '$.leaders') AS leaders, json_array_length(doc, '$.reps') AS reps_ever
  FROM active_read_models
 WHERE model = 'growth' AND kind = 'team';

CREATE VIEW standards AS
SELECT json_extract(doc, '$.standard_id') AS standard_id, json_extract(doc, '$.name') AS name,
       json_extract(doc, '$.metric') AS metric, json_extract(doc, '$.kind') AS kind,
       json_extract(doc, '$.direction') AS direction, json_extract(doc, '$.unit') AS unit,
       json_extract(doc, '$.period') AS period, json_extract(doc, '$.retired_from') AS retired_from,
       json_extract(doc, '$.versions') AS versions
  FROM active_read_models
 WHERE model = 'growth' AND kind = 'standard';
