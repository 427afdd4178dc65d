-- When a queued job's message is next due on the queue (a retry's or a parked job's delay ends); NULL: when it
-- was sent (`enqueued_at`). A queued job well past both has lost its message (a worker died holding it) and
-- the sweeper sends another.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS message_due_at timestamptz;
CREATE INDEX IF NOT EXISTS jobs_queued_sent ON jobs (enqueued_at) WHERE status = 'queued' AND enqueued_at IS NOT NULL;
