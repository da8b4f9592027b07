-- Retention deletes the oldest notifications in small batches; this index finds them
-- without a scan of the whole table. Messages get no such index: it would cost every chat
-- message one more index write, and their oldest rows come first in a scan anyway.
CREATE INDEX notifications_by_age ON notifications (created_at);
