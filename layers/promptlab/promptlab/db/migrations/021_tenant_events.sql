-- Where a tenant's own events (a label moved) are delivered as Standard Webhooks; NULL: nowhere.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS events_url text;
