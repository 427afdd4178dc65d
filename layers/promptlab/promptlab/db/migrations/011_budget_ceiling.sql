-- A budget is a ceiling on every path: spent + reserved <= limit at every moment.
--
-- `jobs.reserved_cost_usd` is now what the job still holds of its key's budget. Python grants a
-- reservation, checked against the limit under the budget row's lock (submit, retry, DLQ redrive); this
-- trigger only ever moves money down: every cost recorded on the job (an answer, an invalid JSON answer,
-- a call that ended after a cancel) is spent and taken out of what the job holds, and what is left is
-- released when the job ends. A job cancelled during its call keeps its reservation until that call's
-- cost is recorded (or its lease runs out: the sweeper releases it), so the call in flight stays covered.
-- Replaces migration 006's trigger, which spent a job's cumulative cost again after each retry.
DROP TRIGGER jobs_settle_budget ON jobs;
DROP FUNCTION settle_job_budget();

CREATE FUNCTION settle_job_budget() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_done boolean := OLD.status IN ('completed', 'failed', 'cancelled');
    is_done boolean := NEW.status IN ('completed', 'failed', 'cancelled');
    spend numeric := greatest(coalesce(NEW.estimated_cost_usd, 0) - coalesce(OLD.estimated_cost_usd, 0), 0);
    held numeric := coalesce(OLD.reserved_cost_usd, 0);
    keep numeric;
BEGIN
    IF was_done AND NOT is_done THEN
        -- Re-opened (retry, redrive): the caller granted NEW.reserved_cost_usd in this transaction.
        RETURN NEW;
    END IF;
    keep := held - least(spend, held);
    IF NEW.reserved_cost_usd IS DISTINCT FROM OLD.reserved_cost_usd THEN
        keep := least(keep, coalesce(NEW.reserved_cost_usd, 0));  -- an explicit release (the sweeper)
    END IF;
    IF is_done AND NOT was_done AND NOT (OLD.status = 'processing' AND NEW.status = 'cancelled') THEN
        keep := 0;  -- the job ended with no call in flight
    ELSIF was_done AND spend > 0 THEN
        keep := 0;  -- the call that outlived its cancel is accounted for
    END IF;
    NEW.reserved_cost_usd := keep;
    IF spend <> 0 OR keep <> held THEN
        UPDATE key_budgets
           SET spent_usd = spent_usd + spend, reserved_usd = reserved_usd - (held - keep)
         WHERE key_id = NEW.api_key_id AND month = NEW.budget_month;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_settle_budget BEFORE UPDATE OF status, estimated_cost_usd, reserved_cost_usd ON jobs
    FOR EACH ROW WHEN (NEW.budget_month IS NOT NULL AND NEW.api_key_id IS NOT NULL)
    EXECUTE FUNCTION settle_job_budget();

-- Ended jobs still holding money: only those cancelled during a call, until the call is accounted for.
CREATE INDEX jobs_ended_holding ON jobs (lease_until)
    WHERE reserved_cost_usd > 0 AND status IN ('completed', 'failed', 'cancelled');
