-- API keys and the gateway: team policy, key requests, keys, usage events.

-- Team policy: which models the team may use, how keys are issued, and the
-- limits the gateway enforces. NULL means "no limit" / "any model".
ALTER TABLE teams
    ADD COLUMN allowed_models      TEXT[],
    ADD COLUMN self_service_keys   BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN max_key_days        INTEGER NOT NULL DEFAULT 90
        CONSTRAINT teams_max_key_days_range CHECK (max_key_days BETWEEN 1 AND 3650),
    ADD COLUMN rpm_limit           INTEGER CONSTRAINT teams_rpm_limit_positive CHECK (rpm_limit > 0),
    ADD COLUMN tpm_limit           INTEGER CONSTRAINT teams_tpm_limit_positive CHECK (tpm_limit > 0),
    ADD COLUMN monthly_token_quota BIGINT CONSTRAINT teams_monthly_token_quota_positive CHECK (monthly_token_quota > 0);

-- A member asks for a key; an owner or admin decides. Approval does not make
-- a secret: the requester claims the key, and only then is the secret made,
-- shown once and stored as an HMAC.
CREATE TABLE key_requests (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id        UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    requester_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL CONSTRAINT key_requests_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    purpose        TEXT NOT NULL DEFAULT '',
    -- NULL: every model the team may use.
    models         TEXT[],
    scopes         TEXT[] NOT NULL CONSTRAINT key_requests_scopes_known
                       CHECK (scopes <@ ARRAY['inference', 'manage']::TEXT[] AND cardinality(scopes) > 0),
    expires_in_days INTEGER NOT NULL CONSTRAINT key_requests_days_range CHECK (expires_in_days BETWEEN 1 AND 3650),
    state          TEXT NOT NULL DEFAULT 'pending'
                       CONSTRAINT key_requests_state_known CHECK (state IN ('pending', 'approved', 'denied', 'issued', 'withdrawn')),
    decided_by     UUID REFERENCES users (id) ON DELETE SET NULL,
    decided_at     TIMESTAMPTZ,
    reason         TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX key_requests_team_idx ON key_requests (team_id, created_at DESC);
CREATE INDEX key_requests_requester_idx ON key_requests (requester_id, created_at DESC);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The `<public id>` in `crl_<public id>_<secret>`: the lookup prefix.
    public_id    TEXT NOT NULL CONSTRAINT api_keys_public_id_key UNIQUE,
    -- HMAC-SHA256(pepper, secret). The secret itself is never stored.
    secret_hmac  BYTEA NOT NULL,
    team_id      UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    request_id   UUID REFERENCES key_requests (id) ON DELETE SET NULL,
    name         TEXT NOT NULL,
    purpose      TEXT NOT NULL DEFAULT '',
    models       TEXT[],
    scopes       TEXT[] NOT NULL CONSTRAINT api_keys_scopes_known
                     CHECK (scopes <@ ARRAY['inference', 'manage']::TEXT[] AND cardinality(scopes) > 0),
    rpm_limit    INTEGER CONSTRAINT api_keys_rpm_limit_positive CHECK (rpm_limit > 0),
    tpm_limit    INTEGER CONSTRAINT api_keys_tpm_limit_positive CHECK (tpm_limit > 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    revoked_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    revoke_reason TEXT,
    -- The key this one replaced by rotation.
    rotated_from UUID REFERENCES api_keys (id) ON DELETE SET NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_team_idx ON api_keys (team_id, created_at DESC);
CREATE INDEX api_keys_owner_idx ON api_keys (owner_id);

-- Every gateway replica LISTENs here and drops its cached copy of a key the
-- moment anything about it (or its team's policy) changes.
CREATE FUNCTION notify_api_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('corral_api_keys', 'key:' || OLD.public_id);
        RETURN OLD;
    END IF;
    -- last_used_at is written by the gateways themselves; it changes nothing.
    IF TG_OP = 'UPDATE' AND NEW.last_used_at IS DISTINCT FROM OLD.last_used_at
       AND (NEW.revoked_at, NEW.expires_at, NEW.scopes, NEW.models, NEW.rpm_limit, NEW.tpm_limit)
           IS NOT DISTINCT FROM (OLD.revoked_at, OLD.expires_at, OLD.scopes, OLD.models, OLD.rpm_limit, OLD.tpm_limit) THEN
        RETURN NEW;
    END IF;
    PERFORM pg_notify('corral_api_keys', 'key:' || NEW.public_id);
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_change();

CREATE FUNCTION notify_team_policy_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.allowed_models, NEW.rpm_limit, NEW.tpm_limit, NEW.monthly_token_quota)
       IS DISTINCT FROM (OLD.allowed_models, OLD.rpm_limit, OLD.tpm_limit, OLD.monthly_token_quota) THEN
        PERFORM pg_notify('corral_api_keys', 'team:' || NEW.id::text);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER teams_policy_notify AFTER UPDATE ON teams
    FOR EACH ROW EXECUTE FUNCTION notify_team_policy_change();

-- One row per request the gateway served. `event_id` is made by the gateway,
-- so a batch replayed after an outage is written once.
CREATE TABLE usage_events (
    id                BIGSERIAL PRIMARY KEY,
    event_id          UUID NOT NULL CONSTRAINT usage_events_event_id_key UNIQUE,
    at                TIMESTAMPTZ NOT NULL,
    team_id           UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    key_id            UUID REFERENCES api_keys (id) ON DELETE SET NULL,
    model             TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    status            SMALLINT NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms        DOUBLE PRECISION NOT NULL,
    ttft_ms           DOUBLE PRECISION,
    upstream          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX usage_events_team_at_idx ON usage_events (team_id, at DESC);
CREATE INDEX usage_events_key_at_idx ON usage_events (key_id, at DESC);

-- A key stops working when its owner leaves its team.
CREATE FUNCTION notify_membership_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('corral_api_keys', 'team:' || OLD.team_id::text);
    RETURN OLD;
END $$;
CREATE TRIGGER memberships_removed_notify AFTER DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION notify_membership_removed();
