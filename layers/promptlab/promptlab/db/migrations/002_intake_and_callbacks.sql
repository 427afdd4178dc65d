-- Jobs submitted through the intake queue remember their SQS message id, so a redelivery
-- finds the job it already made instead of making a second one.
ALTER TABLE jobs ADD COLUMN source_message_id text;
CREATE UNIQUE INDEX jobs_source_message ON jobs (source_message_id) WHERE source_message_id IS NOT NULL;

-- Where a finished job is announced (a webhook per job), and every delivery attempt.
ALTER TABLE jobs ADD COLUMN callback_url text;

CREATE TABLE job_notifications (
    id            bigserial PRIMARY KEY,
    job_id        text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    channel       text NOT NULL,
    event         text NOT NULL,
    attempt       integer NOT NULL,
    status_code   integer,
    error         text,
    delivered     boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_notifications_job ON job_notifications (job_id, id);
