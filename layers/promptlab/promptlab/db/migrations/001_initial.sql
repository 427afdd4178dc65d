-- PromptLab schema. Plain PostgreSQL 15 (also runs on 16).
CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name) VALUES ('default', 'default');

CREATE TABLE api_keys (
    id                  text PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    name                text NOT NULL,
    key_hash            text NOT NULL UNIQUE,
    prefix              text NOT NULL,
    rpm_limit           integer,
    monthly_budget_usd  numeric,
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);

CREATE TABLE templates (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    name             text NOT NULL,
    description      text,
    current_version  integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    archived_at      timestamptz
);
CREATE UNIQUE INDEX templates_live_name ON templates (tenant_id, name) WHERE archived_at IS NULL;
CREATE INDEX templates_tenant_page ON templates (tenant_id, id DESC);

CREATE TABLE template_versions (
    template_id        text NOT NULL REFERENCES templates (id),
    version            integer NOT NULL,
    body               text NOT NULL,
    system             text,
    variables          jsonb NOT NULL,
    defaults           jsonb NOT NULL,
    cache_ttl_seconds  integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

CREATE TABLE jobs (
    id                  text PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    template_id         text NOT NULL REFERENCES templates (id),
    template_version    integer NOT NULL,
    provider            text NOT NULL,
    model               text NOT NULL,
    params              jsonb NOT NULL,
    input               jsonb,
    input_hash          text NOT NULL,
    status              text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    priority            text NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL,
    error               jsonb,
    output              text,
    finish_reason       text,
    truncated           boolean,
    input_tokens        integer,
    output_tokens       integer,
    cache_read_tokens   integer,
    cache_write_tokens  integer,
    total_tokens        integer,
    estimated_cost_usd  numeric,
    unit_prices         jsonb,
    cache_hit           boolean NOT NULL DEFAULT false,
    saved_cost_usd      numeric,
    idempotency_key     text,
    answered_by         text,
    metadata            jsonb,
    provider_latency_ms integer,
    enqueued_at         timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    lease_until         timestamptz,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_tenant_page ON jobs (tenant_id, id DESC);
CREATE INDEX jobs_hash_done ON jobs (input_hash, completed_at DESC) WHERE status = 'completed';
CREATE INDEX jobs_hash_inflight ON jobs (input_hash) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_unsent ON jobs (created_at) WHERE status = 'queued' AND enqueued_at IS NULL;
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'processing';

CREATE TABLE job_attempts (
    job_id               text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    n                    integer NOT NULL,
    started_at           timestamptz NOT NULL DEFAULT now(),
    ended_at             timestamptz,
    outcome              text NOT NULL DEFAULT 'started',
    error                jsonb,
    provider_request_id  text,
    PRIMARY KEY (job_id, n)
);

CREATE TABLE dead_letters (
    id                bigserial PRIMARY KEY,
    job_id            text REFERENCES jobs (id) ON DELETE SET NULL,
    queue             text NOT NULL,
    reason            text NOT NULL,
    receive_count     integer,
    message_id        text UNIQUE,
    body              text NOT NULL,
    dead_lettered_at  timestamptz NOT NULL DEFAULT now(),
    redriven_at       timestamptz
);

CREATE TABLE idempotency_keys (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    key          text NOT NULL,
    body_hash    text NOT NULL,
    status_code  integer,
    response     jsonb,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
