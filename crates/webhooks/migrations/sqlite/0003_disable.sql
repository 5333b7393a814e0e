-- A receiver that answers 410 Gone disables its subscription: nothing more
-- is queued or sent for it until an admin resumes it. Why is kept beside when.
ALTER TABLE webhook_subscriptions ADD COLUMN disabled_at TEXT;
ALTER TABLE webhook_subscriptions ADD COLUMN disabled_reason TEXT;
