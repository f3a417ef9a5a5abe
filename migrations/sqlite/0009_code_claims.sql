-- Who is creating a code right now, so that processes sharing one database make one
-- `qrcode/create` per code: a process claims the code, checks the inventory again, creates
-- it and records it, and the record ends the claim in the same transaction. A claim whose
-- lease ran out (its process died mid-create) may be taken over.
CREATE TABLE code_claims (
    code        TEXT   PRIMARY KEY,             -- the code's canonical query string
    holder      TEXT   NOT NULL,                -- the claiming process
    lease_until BIGINT NOT NULL                 -- Unix milliseconds
);
