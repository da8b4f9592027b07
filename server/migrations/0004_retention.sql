-- Retention deletes the oldest rows in small batches; these indexes find them without a
-- scan of the whole table.
CREATE INDEX messages_by_age ON messages (created_at);
CREATE INDEX notifications_by_age ON notifications (created_at);
