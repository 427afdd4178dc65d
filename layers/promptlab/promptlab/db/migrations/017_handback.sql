-- The claim that holds a processing job: a token per claim. A worker that loses its database under a record
-- gives the job back by re-sending its message with this token, so the next delivery may take the job over
-- at once instead of waiting for the lease to run out.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS holder text;
