-- Datasets: per tenant, versioned like templates — an edit makes a new version; rows are kept
-- per version, so an experiment names the exact rows it ran over.
CREATE TABLE datasets (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    name             text NOT NULL,
    description      text,
    current_version  integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE dataset_versions (
    dataset_id  text NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version     integer NOT NULL,
    row_count   integer NOT NULL,
    fields      jsonb NOT NULL,        -- the input fields any row has, sorted
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, version)
);

CREATE TABLE dataset_rows (
    dataset_id  text NOT NULL,
    version     integer NOT NULL,
    n           integer NOT NULL,      -- 1-based, in upload order
    input       jsonb NOT NULL,
    expected    jsonb,
    metadata    jsonb,
    PRIMARY KEY (dataset_id, version, n),
    FOREIGN KEY (dataset_id, version) REFERENCES dataset_versions (dataset_id, version) ON DELETE CASCADE
);
