-- Webhooks are signed per tenant (Standard Webhooks): the current signing secret, and the one it replaced,
-- which still signs for a day after a rotation so receivers can switch without dropping a delivery.
ALTER TABLE tenants ADD COLUMN webhook_secret text;
ALTER TABLE tenants ADD COLUMN webhook_secret_previous text;
ALTER TABLE tenants ADD COLUMN webhook_secret_rotated_at timestamptz;
