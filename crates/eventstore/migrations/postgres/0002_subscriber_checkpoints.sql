-- Where each subscriber of the log (the notification relay, alert rules, …)
-- stands. Projections keep their checkpoints with their read models instead.
CREATE TABLE trellis.subscriber_checkpoints (
    name       text PRIMARY KEY,
    tx         bigint      NOT NULL,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON trellis.subscriber_checkpoints TO trellis_writer;
