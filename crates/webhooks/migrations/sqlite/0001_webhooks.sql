-- Webhook subscriptions and their delivery log, in the embedded file.
-- The same tables as PostgreSQL: times are RFC 3339 text (UTC, microseconds),
-- arrays are JSON text, ids are UUID text.

CREATE TABLE webhook_subscriptions (
    id             TEXT    PRIMARY KEY,
    url            TEXT    NOT NULL,
    event_types    TEXT    NOT NULL,
    categories     TEXT    NOT NULL,
    secret         TEXT    NOT NULL,
    start_tx       INTEGER NOT NULL,
    start_position INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    deleted_at     TEXT
);

CREATE TABLE webhook_deliveries (
    id               TEXT    PRIMARY KEY,
    subscription_id  TEXT    NOT NULL REFERENCES webhook_subscriptions (id),
    event_id         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    stream_id        TEXT    NOT NULL,
    global_position  INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    replays          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT    NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    delivered_at     TEXT,
    UNIQUE (subscription_id, event_id)
);

CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription
    ON webhook_deliveries (subscription_id, status, created_at);

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT    NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at TEXT    NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);
