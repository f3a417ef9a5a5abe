-- Temporary codes by expiry, for the status page's count of those expiring within a week: a
-- range of this index, not a scan of every code ever made.
CREATE INDEX codes_by_expiry ON codes (expires_at) WHERE kind = 'temporary';
