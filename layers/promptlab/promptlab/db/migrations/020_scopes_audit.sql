-- Key scopes (NULL: every scope, as keys made before scopes had), protected labels, and the audit log.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS scopes text[];
ALTER TABLE template_labels ADD COLUMN IF NOT EXISTS protected boolean NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS audit_log (
    id           bigserial PRIMARY KEY,
    tenant_id    text NOT NULL,
    at           timestamptz NOT NULL,
    key_id       text,
    key_name     text,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    before       jsonb,
    after        jsonb,
    request_id   text,
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant_id, id);

-- Append-only: no update ever, and a delete only from the retention sweep (which sets the flag in its
-- own transaction). The hash chain makes any other change detectable (`promptlab audit verify`).
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('promptlab.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
