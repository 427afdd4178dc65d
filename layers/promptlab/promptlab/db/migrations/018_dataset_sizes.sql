-- How much a dataset version holds (its rows as JSON text), so a tenant's datasets can be kept under a limit.
ALTER TABLE dataset_versions ADD COLUMN IF NOT EXISTS bytes bigint NOT NULL DEFAULT 0;
