-- Calls the provider refused with a 429 (rate limited, model not ready): they cost the job no attempt.
-- The worker raises `max_attempts` by one for each, up to `PROMPTLAB_MAX_THROTTLES`; this counts them.
ALTER TABLE jobs ADD COLUMN throttles integer NOT NULL DEFAULT 0;
