-- A template version can mark its system prompt cacheable (Anthropic prompt caching).
ALTER TABLE template_versions ADD COLUMN cache_system boolean NOT NULL DEFAULT false;
-- Things a completed job wants a person to notice (an answer cut by maxTokens, an empty answer).
ALTER TABLE jobs ADD COLUMN warnings jsonb;
