-- The access token that replicas share, one row per AppID. A token fetched by one replica
-- is used by all until it expires or WeChat rejects it; a rejected one is cleared only if it
-- is still the stored one. One replica at a time fetches (the lease), since a classic fetch
-- ends the token everyone else holds; and forced refreshes are counted here, since WeChat
-- allows 20 a day, 30 seconds apart, whichever replica asks.
CREATE TABLE access_tokens (
    appid         TEXT    PRIMARY KEY,
    token         TEXT,                         -- NULL: none usable
    usable_until  BIGINT  NOT NULL DEFAULT 0,   -- Unix milliseconds, before WeChat's expiry
    fetcher       TEXT,                         -- the replica fetching a new token
    fetch_until   BIGINT  NOT NULL DEFAULT 0,   -- its lease, Unix milliseconds
    forced_day    BIGINT  NOT NULL DEFAULT 0,   -- the day (UTC+8, WeChat's) of forced_today
    forced_today  INTEGER NOT NULL DEFAULT 0,   -- forced refreshes on that day
    forced_at     BIGINT  NOT NULL DEFAULT 0    -- the last one, Unix milliseconds
);
