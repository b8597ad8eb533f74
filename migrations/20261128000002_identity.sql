-- Identity: people, teams, memberships and the audit log.

CREATE TABLE users (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Who vouches for this person: the OIDC issuer URL, or 'dev' for the
    -- local development sign-in.
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    username        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    email           TEXT,
    is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sign_in_at TIMESTAMPTZ,
    CONSTRAINT users_issuer_subject_key UNIQUE (issuer, subject)
);

CREATE TABLE teams (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- The IdP group whose members belong to this team, e.g. '/team-a'.
    -- NULL for teams an admin created that the IdP does not know.
    idp_group   TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT teams_slug_key UNIQUE (slug),
    CONSTRAINT teams_idp_group_key UNIQUE (idp_group),
    CONSTRAINT teams_slug_format CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT teams_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);

CREATE TYPE team_role AS ENUM ('member', 'owner');

CREATE TABLE memberships (
    team_id    UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       team_role NOT NULL DEFAULT 'member',
    -- 'idp': synced from the groups claim at every sign-in;
    -- 'manual': added by an admin, left alone by the sync.
    source     TEXT NOT NULL CHECK (source IN ('idp', 'manual')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL actor: Corral itself (e.g. the membership sync acting for the IdP).
    actor_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    team_id     UUID REFERENCES teams (id) ON DELETE SET NULL,
    before      JSONB,
    after       JSONB,
    request_id  TEXT
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_team_idx ON audit_log (team_id, at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);
