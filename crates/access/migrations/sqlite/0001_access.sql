-- Who may sign in, and how: the same tables as on PostgreSQL. Times are
-- RFC 3339 text in UTC with microseconds, so text order is time order.
CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'auditor', 'leader', 'rep')),
    person       TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    email        TEXT UNIQUE,
    oidc_subject TEXT UNIQUE,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    disabled_at  TEXT
);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   TEXT REFERENCES accounts (id),
    claims       TEXT,
    via          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT,
    ended_by     TEXT,
    CHECK ((account_id IS NULL) <> (claims IS NULL))
);
CREATE INDEX sessions_of_account ON sessions (account_id) WHERE ended_at IS NULL;

CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE TABLE sign_in_flows (
    id_hash    TEXT PRIMARY KEY,
    pending    TEXT NOT NULL,
    next       TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE service_accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    grants     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
