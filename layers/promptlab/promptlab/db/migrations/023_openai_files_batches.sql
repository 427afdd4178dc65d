-- OpenAI-style files (their bytes in the stack's bucket) and batches (each line an ordinary job).
CREATE TABLE IF NOT EXISTS openai_files (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    purpose     text NOT NULL,
    filename    text NOT NULL,
    bytes       bigint NOT NULL,
    object_key  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX IF NOT EXISTS openai_files_tenant ON openai_files (tenant_id, id);
CREATE INDEX IF NOT EXISTS openai_files_expiry ON openai_files (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS openai_batches (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id),
    api_key_id         text,
    input_file_id      text NOT NULL,
    endpoint           text NOT NULL,
    completion_window  text NOT NULL,
    metadata           jsonb,
    status             text NOT NULL,
    errors             jsonb,
    total              integer NOT NULL DEFAULT 0,
    output_file_id     text,
    error_file_id      text,
    reserved_usd       numeric(20, 10) NOT NULL DEFAULT 0,
    budget_month       date,
    created_at         timestamptz NOT NULL DEFAULT now(),
    in_progress_at     timestamptz,
    expires_at         timestamptz NOT NULL,
    finalizing_at      timestamptz,
    completed_at       timestamptz,
    failed_at          timestamptz,
    expired_at         timestamptz,
    cancelling_at      timestamptz,
    cancelled_at       timestamptz
);
CREATE INDEX IF NOT EXISTS openai_batches_tenant ON openai_batches (tenant_id, id);
CREATE INDEX IF NOT EXISTS openai_batches_open ON openai_batches (status) WHERE status IN ('in_progress', 'cancelling', 'finalizing');

-- A batch line is a job: which batch, its `custom_id` and its line number (1-based).
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS openai_batch_id text;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS custom_id text;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS batch_line integer;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_openai_batch_line ON jobs (openai_batch_id, batch_line) WHERE openai_batch_id IS NOT NULL;
