-- Single flight: at most one queued or processing job per tenant and input hash among the jobs that
-- take part (a request with cache off, or a retried job, does not).
ALTER TABLE jobs ADD COLUMN single_flight boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX jobs_single_flight ON jobs (tenant_id, input_hash)
    WHERE single_flight AND status IN ('queued', 'processing');
