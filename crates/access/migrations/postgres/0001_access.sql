-- Who may sign in, and how (schema trellis, beside the log).
-- Applied by trellis-access on start, under an advisory lock.

-- One row per person who may sign in: a leader or a rep (by their id in
-- the log), or an admin or auditor (their account id is their id). Linked
-- to identities at the company's identity provider by verified email or by
-- subject.
CREATE TABLE trellis.accounts (
    id           uuid        PRIMARY KEY,
    role         text        NOT NULL CHECK (role IN ('admin', 'auditor', 'leader', 'rep')),
    person       uuid        NOT NULL UNIQUE,
    name         text        NOT NULL,
    email        text        UNIQUE,
    oidc_subject text        UNIQUE,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL,
    disabled_at  timestamptz
);

-- A signed-in browser. The cookie carries a random id; only its SHA-256 is
-- kept, so reading this table does not let anyone sign in. A session
-- started with a developer token (`trellis token`) keeps that token's
-- claims instead of an account.
CREATE TABLE trellis.sessions (
    id_hash      text        PRIMARY KEY,
    account_id   uuid        REFERENCES trellis.accounts (id),
    claims       jsonb,
    via          text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    ended_by     text,
    CHECK ((account_id IS NULL) <> (claims IS NULL))
);
CREATE INDEX sessions_of_account ON trellis.sessions (account_id) WHERE ended_at IS NULL;

-- One-time sign-in links an admin creates; only the token's SHA-256 is kept.
CREATE TABLE trellis.sign_in_links (
    token_hash text        PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES trellis.accounts (id),
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- A sign-in at the identity provider under way: what the callback checks
-- (state, nonce, PKCE verifier), bound to the browser that started it by a
-- cookie whose SHA-256 is the key. Deleted when used.
CREATE TABLE trellis.sign_in_flows (
    id_hash    text        PRIMARY KEY,
    pending    jsonb       NOT NULL,
    next       text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Tokens for other services; only the token's SHA-256 is kept.
CREATE TABLE trellis.service_accounts (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    token_hash text        NOT NULL UNIQUE,
    grants     jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    revoked_at timestamptz,
    revoked_by text
);

GRANT SELECT, INSERT, UPDATE ON trellis.accounts, trellis.sessions, trellis.sign_in_links,
    trellis.service_accounts TO trellis_writer;
GRANT SELECT, INSERT, DELETE ON trellis.sign_in_flows TO trellis_writer;
