-- Cluster operations: a durable queue of work on the Ollama workloads
-- (pull, delete, copy, scale, and the Modelfile create), taken by runners
-- with FOR UPDATE SKIP LOCKED under a lease, with per-pod steps and a log.

CREATE TABLE operations (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             TEXT NOT NULL
                         CONSTRAINT operations_kind_known CHECK (kind IN ('pull', 'delete', 'copy', 'scale', 'create')),
    -- The workload (a named set of Ollama pods) it acts on.
    workload         TEXT NOT NULL CONSTRAINT operations_workload_length CHECK (char_length(workload) BETWEEN 1 AND 63),
    -- pull, delete, create: the model; copy: the source.
    model            TEXT CONSTRAINT operations_model_length CHECK (char_length(model) BETWEEN 1 AND 200),
    -- copy: the destination.
    destination      TEXT CONSTRAINT operations_destination_length CHECK (char_length(destination) BETWEEN 1 AND 200),
    -- scale: the replicas asked for.
    replicas         INTEGER CONSTRAINT operations_replicas_range CHECK (replicas BETWEEN 0 AND 1000),
    -- create: Ollama's structured /api/create request.
    spec             JSONB,
    state            TEXT NOT NULL DEFAULT 'queued'
                         CONSTRAINT operations_state_known
                         CHECK (state IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- The team it was asked for (NULL: the platform's own).
    team_id          UUID REFERENCES teams (id) ON DELETE SET NULL,
    requested_by     UUID REFERENCES users (id) ON DELETE SET NULL,
    requested_by_name TEXT NOT NULL,
    -- A scheduled operation waits until then (the next maintenance window).
    not_before       TIMESTAMPTZ,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3 CONSTRAINT operations_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 20),
    -- The runner holding it, until when; renewed by its heartbeat.
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    -- Why it failed, or what the outcome means (e.g. "the HPA's bounds were changed").
    error            TEXT,
    outcome          TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT operations_fields_of_kind CHECK (
        CASE kind
            WHEN 'scale' THEN replicas IS NOT NULL
            WHEN 'copy' THEN model IS NOT NULL AND destination IS NOT NULL
            WHEN 'create' THEN model IS NOT NULL AND spec IS NOT NULL
            ELSE model IS NOT NULL
        END
    )
);
-- One pull of a model per workload at a time: a second request joins it.
CREATE UNIQUE INDEX operations_one_pull_per_model
    ON operations (workload, model) WHERE kind = 'pull' AND state IN ('scheduled', 'queued', 'running');
-- What runners look at: the oldest ready work, and leases that ran out.
CREATE INDEX operations_open_idx ON operations (created_at) WHERE state IN ('scheduled', 'queued', 'running');
CREATE INDEX operations_team_idx ON operations (team_id, created_at DESC);
CREATE INDEX operations_created_idx ON operations (created_at DESC);

-- One step per pod (or one for a shared models volume, or one for a scale).
CREATE TABLE operation_steps (
    operation_id UUID NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    -- The pod's name (or "shared", or the workload for a scale).
    pod          TEXT NOT NULL,
    -- The pod's Ollama, e.g. http://10.0.0.7:11434.
    endpoint     TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'pending'
                     CONSTRAINT operation_steps_state_known
                     CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    -- Ollama's latest status line, e.g. "pulling 6a0746a1ec1a".
    status       TEXT NOT NULL DEFAULT '',
    -- Bytes over every layer seen so far.
    completed    BIGINT NOT NULL DEFAULT 0 CONSTRAINT operation_steps_completed_positive CHECK (completed >= 0),
    total        BIGINT NOT NULL DEFAULT 0 CONSTRAINT operation_steps_total_positive CHECK (total >= 0),
    -- Bytes per second over the last stretch, for the rate and ETA.
    rate         DOUBLE PRECISION NOT NULL DEFAULT 0,
    error        TEXT,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (operation_id, pod)
);

-- What happened, line by line, for the operation's page.
CREATE TABLE operation_log (
    id           BIGSERIAL PRIMARY KEY,
    operation_id UUID NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    pod          TEXT,
    line         TEXT NOT NULL
);
CREATE INDEX operation_log_operation_idx ON operation_log (operation_id, id);

-- Every Corral replica LISTENs here and pushes the change to the browsers
-- and API clients watching that operation, whichever replica runs it.
CREATE FUNCTION notify_operation_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'operations' THEN
        PERFORM pg_notify('corral_operations', NEW.id::text);
    ELSE
        PERFORM pg_notify('corral_operations', NEW.operation_id::text);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER operations_notify AFTER INSERT OR UPDATE ON operations
    FOR EACH ROW EXECUTE FUNCTION notify_operation_change();
CREATE TRIGGER operation_steps_notify AFTER INSERT OR UPDATE ON operation_steps
    FOR EACH ROW EXECUTE FUNCTION notify_operation_change();

-- Maintenance windows: an operation may wait for the next one.
CREATE TABLE maintenance_windows (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- ISO weekday: 1 = Monday … 7 = Sunday.
    weekday    SMALLINT NOT NULL CONSTRAINT maintenance_windows_weekday_range CHECK (weekday BETWEEN 1 AND 7),
    starts     TIME NOT NULL,
    ends       TIME NOT NULL,
    time_zone  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT maintenance_windows_order CHECK (starts < ends)
);
