-- A dead letter an operator has looked at and set aside: it leaves `promptlab dlq list` and is never redriven.
ALTER TABLE dead_letters ADD COLUMN dismissed_at timestamptz;
