-- Versioned Modelfiles: a team's (or the platform's) custom model, every
-- save an immutable version, deployed to a workload's pods by a `create`
-- operation, the deployed version recorded per workload.

CREATE TABLE modelfiles (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The owning team; NULL: the platform's own (admins).
    team_id     UUID REFERENCES teams (id) ON DELETE CASCADE,
    -- The Ollama model it creates, normalised (`team-a/reviewer:latest`).
    -- One namespace for the whole cluster: a name belongs to one Modelfile.
    name        TEXT NOT NULL UNIQUE CONSTRAINT modelfiles_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    description TEXT NOT NULL DEFAULT '' CONSTRAINT modelfiles_description_length CHECK (char_length(description) <= 500),
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The newest version's number (versions are 1, 2, 3 …).
    latest      INTEGER NOT NULL DEFAULT 0 CONSTRAINT modelfiles_latest_positive CHECK (latest >= 0)
);
CREATE INDEX modelfiles_team_idx ON modelfiles (team_id, name);

CREATE TABLE modelfile_versions (
    modelfile_id UUID NOT NULL REFERENCES modelfiles (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL CONSTRAINT modelfile_versions_version_positive CHECK (version >= 1),
    -- The Modelfile as written, and Ollama's /api/create request it becomes.
    text         TEXT NOT NULL CONSTRAINT modelfile_versions_text_length CHECK (char_length(text) <= 262144),
    request      JSONB NOT NULL,
    -- The model it is built FROM, normalised (for the allow-list and pulls).
    base         TEXT NOT NULL,
    message      TEXT NOT NULL CONSTRAINT modelfile_versions_message_length CHECK (char_length(message) BETWEEN 1 AND 500),
    author_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    author_name  TEXT NOT NULL,
    -- A rollback: the version it restores.
    restores     INTEGER,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (modelfile_id, version)
);

-- Versions are immutable: only their Modelfile's deletion removes them.
CREATE FUNCTION modelfile_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'modelfile versions are immutable' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER modelfile_versions_no_update BEFORE UPDATE ON modelfile_versions
    FOR EACH ROW EXECUTE FUNCTION modelfile_versions_immutable();

-- Which version each workload runs: moved only when a deploy succeeded on
-- every pod.
CREATE TABLE modelfile_deployments (
    modelfile_id UUID NOT NULL REFERENCES modelfiles (id) ON DELETE CASCADE,
    workload     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    operation_id UUID REFERENCES operations (id) ON DELETE SET NULL,
    deployed_by  TEXT NOT NULL,
    deployed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (modelfile_id, workload),
    FOREIGN KEY (modelfile_id, version) REFERENCES modelfile_versions (modelfile_id, version)
);

-- A `create` operation names the version it deploys.
ALTER TABLE operations
    ADD COLUMN modelfile_id      UUID REFERENCES modelfiles (id) ON DELETE SET NULL,
    ADD COLUMN modelfile_version INTEGER;
CREATE INDEX operations_modelfile_idx ON operations (modelfile_id, created_at DESC) WHERE modelfile_id IS NOT NULL;

-- A team's keys may call the models its Modelfiles create, and no other
-- team's keys may: every gateway drops its cached grants when a Modelfile
-- is added or removed (rare, unlike key checks).
CREATE FUNCTION notify_modelfile_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('corral_api_keys', 'grants');
    RETURN NULL;
END $$;
CREATE TRIGGER modelfiles_notify AFTER INSERT OR DELETE ON modelfiles
    FOR EACH STATEMENT EXECUTE FUNCTION notify_modelfile_change();
