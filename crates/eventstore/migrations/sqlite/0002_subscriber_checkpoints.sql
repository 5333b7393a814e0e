-- Where each subscriber of the log (the notification relay, alert rules, …) stands.
CREATE TABLE subscriber_checkpoints (
    name       TEXT PRIMARY KEY,
    tx         INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
