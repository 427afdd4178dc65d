-- A job may carry a conversation (chat messages) instead of the template's rendered body.
ALTER TABLE jobs ADD COLUMN messages jsonb;
