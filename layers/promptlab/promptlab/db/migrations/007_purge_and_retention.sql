-- Privacy: a job's input and output can be purged (on request, or after the tenant's retention period);
-- the accounting (tokens, cost, times) stays.
ALTER TABLE jobs ADD COLUMN purged_at timestamptz;
ALTER TABLE tenants ADD COLUMN retention_days integer CHECK (retention_days IS NULL OR retention_days > 0);
CREATE INDEX jobs_unpurged_done ON jobs (tenant_id, completed_at) WHERE purged_at IS NULL;
