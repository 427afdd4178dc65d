-- A job may name fallbacks ("provider:model"); route_index says which entry is being tried
-- (0 = the job's own provider and model).
ALTER TABLE jobs ADD COLUMN fallbacks jsonb;
ALTER TABLE jobs ADD COLUMN route_index integer NOT NULL DEFAULT 0;
