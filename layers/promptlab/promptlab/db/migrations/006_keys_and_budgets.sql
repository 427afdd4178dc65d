-- API keys belong to a tenant; a key may carry a monthly budget, reserved at submit time and settled
-- when the job ends. One row per key and UTC month.
CREATE TABLE key_budgets (
    key_id        text NOT NULL REFERENCES api_keys (id),
    month         date NOT NULL,
    spent_usd     numeric NOT NULL DEFAULT 0,
    reserved_usd  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, month)
);

ALTER TABLE jobs ADD COLUMN api_key_id text;
ALTER TABLE jobs ADD COLUMN reserved_cost_usd numeric;
ALTER TABLE jobs ADD COLUMN budget_month date;
-- The API request that made the job: the correlation id of every log line about it.
ALTER TABLE jobs ADD COLUMN request_id text;
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at);

-- Settling is tied to the row change itself, so it happens exactly once whichever code path ends the
-- job (worker, DLQ handler, sweeper, cancel): the reservation is released and the real cost spent. A cost
-- recorded after the end (a job cancelled during its call) is spent then. A job sent again after it
-- ended (retry, redrive) reserves again.
CREATE FUNCTION settle_job_budget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_done boolean := OLD.status IN ('completed', 'failed', 'cancelled');
    is_done boolean := NEW.status IN ('completed', 'failed', 'cancelled');
    reserve_delta numeric := 0;
    spend_delta numeric := 0;
BEGIN
    IF is_done AND NOT was_done THEN
        reserve_delta := -NEW.reserved_cost_usd;
        spend_delta := coalesce(NEW.estimated_cost_usd, 0);
    ELSIF was_done AND NOT is_done THEN
        reserve_delta := NEW.reserved_cost_usd;
    ELSIF is_done THEN
        spend_delta := coalesce(NEW.estimated_cost_usd, 0) - coalesce(OLD.estimated_cost_usd, 0);
    END IF;
    IF reserve_delta <> 0 OR spend_delta <> 0 THEN
        UPDATE key_budgets
           SET reserved_usd = reserved_usd + reserve_delta, spent_usd = spent_usd + spend_delta
         WHERE key_id = NEW.api_key_id AND month = NEW.budget_month;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_settle_budget AFTER UPDATE OF status, estimated_cost_usd ON jobs FOR EACH ROW
    WHEN (NEW.reserved_cost_usd IS NOT NULL) EXECUTE FUNCTION settle_job_budget();
