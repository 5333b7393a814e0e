-- Webhook subscriptions and their delivery log, next to the log (schema trellis).
-- Applied by trellis-webhooks on start, under an advisory lock.

-- One row per subscription. A deleted subscription keeps its row (and its
-- delivery log) with `deleted_at` set; it receives nothing more.
CREATE TABLE trellis.webhook_subscriptions (
    id             uuid        PRIMARY KEY,
    url            text        NOT NULL,
    -- JSON arrays of strings; empty means every event type / category.
    event_types    jsonb       NOT NULL,
    categories     jsonb       NOT NULL,
    -- `whsec_<base64>`: the HMAC key is the decoded base64 part.
    secret         text        NOT NULL,
    -- The subscription sees the events after this place in the log (the
    -- log's head when it was created).
    start_tx       bigint      NOT NULL,
    start_position bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    created_by     text        NOT NULL,
    deleted_at     timestamptz
);

-- One row per (subscription, event): what to send and where it stands.
CREATE TABLE trellis.webhook_deliveries (
    id               uuid        PRIMARY KEY,
    subscription_id  uuid        NOT NULL REFERENCES trellis.webhook_subscriptions (id),
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    stream_id        text        NOT NULL,
    global_position  bigint      NOT NULL,
    -- The JSON body, fixed when the delivery was queued (every attempt sends
    -- the same bytes).
    body             text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    -- Attempts since the delivery was queued or last replayed.
    attempts         integer     NOT NULL DEFAULT 0,
    replays          integer     NOT NULL DEFAULT 0,
    -- When a pending delivery is next due (also the lease of a sender that claimed it).
    next_attempt_at  timestamptz NOT NULL,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (subscription_id, event_id)
);

CREATE INDEX webhook_deliveries_due
    ON trellis.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription
    ON trellis.webhook_deliveries (subscription_id, status, created_at);

-- Every attempt ever made, kept across replays.
CREATE TABLE trellis.webhook_attempts (
    id           bigserial   PRIMARY KEY,
    delivery_id  uuid        NOT NULL REFERENCES trellis.webhook_deliveries (id),
    attempted_at timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer     NOT NULL
);

CREATE INDEX webhook_attempts_by_delivery ON trellis.webhook_attempts (delivery_id, id);

GRANT SELECT, INSERT, UPDATE ON trellis.webhook_subscriptions, trellis.webhook_deliveries,
    trellis.webhook_attempts TO trellis_writer;
GRANT USAGE ON SEQUENCE trellis.webhook_attempts_id_seq TO trellis_writer;
