-- The economy lane: jobs sent through providers' batch APIs at about half price.
ALTER TABLE jobs ADD COLUMN lane text NOT NULL DEFAULT 'standard' CHECK (lane IN ('standard', 'economy'));
ALTER TABLE jobs ADD COLUMN batch_id text;
ALTER TABLE jobs ADD COLUMN batch_requeues integer NOT NULL DEFAULT 0;
CREATE INDEX jobs_economy_pending ON jobs (created_at) WHERE lane = 'economy' AND status = 'queued' AND batch_id IS NULL;
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE provider_batches (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id),
    provider           text NOT NULL,
    model              text NOT NULL,
    provider_batch_id  text,
    status             text NOT NULL CHECK (status IN ('submitting', 'in_progress', 'ended', 'failed')),
    request_count      integer NOT NULL,
    succeeded          integer NOT NULL DEFAULT 0,
    errored            integer NOT NULL DEFAULT 0,
    expired            integer NOT NULL DEFAULT 0,
    canceled           integer NOT NULL DEFAULT 0,
    error              text,
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    ended_at           timestamptz
);
CREATE INDEX provider_batches_tenant ON provider_batches (tenant_id, id DESC);
CREATE INDEX provider_batches_open ON provider_batches (created_at) WHERE status IN ('submitting', 'in_progress');
