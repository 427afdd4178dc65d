-- A version may declare a JSON Schema for its variables.
ALTER TABLE template_versions ADD COLUMN variables_schema jsonb;

-- Labels point at a version of a template (`production`, `staging`, …); every move is recorded.
CREATE TABLE template_labels (
    template_id  text NOT NULL REFERENCES templates (id),
    label        text NOT NULL,
    version      integer NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text,
    PRIMARY KEY (template_id, label),
    FOREIGN KEY (template_id, version) REFERENCES template_versions (template_id, version)
);

CREATE TABLE template_label_moves (
    id            bigserial PRIMARY KEY,
    template_id   text NOT NULL REFERENCES templates (id),
    label         text NOT NULL,
    from_version  integer,
    to_version    integer NOT NULL,
    moved_by      text,
    moved_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX template_label_moves_template ON template_label_moves (template_id, id);
