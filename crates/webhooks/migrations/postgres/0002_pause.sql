-- A paused subscription keeps having its deliveries queued; none is sent
-- until it is resumed.
ALTER TABLE trellis.webhook_subscriptions ADD COLUMN paused_at timestamptz;
