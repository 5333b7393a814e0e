-- A paused subscription keeps having its deliveries queued; none is sent
-- until it is resumed. RFC 3339 text, as every time here.
ALTER TABLE webhook_subscriptions ADD COLUMN paused_at TEXT;
