-- Experiments: every variant of an experiment run over every row of one dataset version, as
-- ordinary jobs. A job made by an experiment names it, its variant and row (and, for a judge's call, the
-- scorer), so usage and budgets see it and the scores find their row.
CREATE TABLE experiments (
    id                  text PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    api_key_id          text,
    name                text,
    dataset_id          text NOT NULL REFERENCES datasets (id),
    dataset_version     integer NOT NULL,
    variants            jsonb NOT NULL,   -- [{template, templateId, templateVersion, provider, model, params}]
    scorers             jsonb NOT NULL,   -- [{type, name, …}]
    priority            text NOT NULL,
    row_numbers         jsonb,            -- the sampled rows (null: every row)
    row_count           integer NOT NULL,
    status              text NOT NULL DEFAULT 'running',   -- running | completed | cancelled
    -- What the experiment holds of its key's budget for judge calls not yet made (their worst case).
    judge_reserved_usd  numeric(20, 10) NOT NULL DEFAULT 0,
    judge_row_usd       numeric(20, 10),  -- the worst case of one row's judge calls
    budget_month        date,
    created_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz
);
CREATE INDEX experiments_tenant ON experiments (tenant_id, id);

ALTER TABLE jobs ADD COLUMN experiment_id text;
ALTER TABLE jobs ADD COLUMN experiment_variant smallint;
ALTER TABLE jobs ADD COLUMN experiment_row integer;
ALTER TABLE jobs ADD COLUMN experiment_scorer text;   -- set on a judge scorer's call
-- When a feeder took the job to send it (no connection is held while it sends); one that died is
-- replaced after a minute, so a job is never left unsent.
ALTER TABLE jobs ADD COLUMN send_claimed_at timestamptz;
CREATE INDEX jobs_experiment ON jobs (experiment_id, experiment_row, experiment_variant) WHERE experiment_id IS NOT NULL;
CREATE INDEX jobs_experiment_open ON jobs (experiment_id)
    WHERE experiment_id IS NOT NULL AND status IN ('queued', 'processing');
CREATE INDEX jobs_experiment_sent ON jobs (experiment_id)
    WHERE experiment_id IS NOT NULL AND experiment_scorer IS NULL AND enqueued_at IS NOT NULL
    AND status IN ('queued', 'processing');
-- An experiment keeps a window of its jobs on the queue and sends the next as each ends: these wait their turn.
CREATE INDEX jobs_experiment_unsent ON jobs (experiment_id, experiment_row, experiment_variant)
    WHERE experiment_id IS NOT NULL AND status = 'queued' AND enqueued_at IS NULL;

-- One score per variant, row and scorer: a number in [0, 1], or the error that kept it from being scored.
CREATE TABLE experiment_scores (
    experiment_id  text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    variant        smallint NOT NULL,
    row_n          integer NOT NULL,
    scorer         text NOT NULL,
    score          numeric(8, 6),
    error          text,
    judge_job_id   text,
    scored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment_id, variant, row_n, scorer)
);
CREATE INDEX experiment_scores_judge ON experiment_scores (judge_job_id) WHERE judge_job_id IS NOT NULL;

-- A label moved by promoting an experiment's variant says so in the label history.
ALTER TABLE template_label_moves ADD COLUMN experiment_id text;
