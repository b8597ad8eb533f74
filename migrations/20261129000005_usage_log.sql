-- Usage events are an append-only log written at request rate. Measured
-- with 256-row batches on the CI machine: the two foreign-key checks (a
-- FOR KEY SHARE look-up of the team and of the key for every row) cost
-- twice the insert itself, and the bigserial key plus the per-key index
-- doubled the index work. Teams and keys are never deleted (keys are
-- revoked, teams archived), and the gateway only writes ids it has just
-- read from Postgres, so the log keeps its ids without the checks.
-- event_id (time-ordered, made by the gateway) becomes the primary key:
-- it is what makes a replayed batch idempotent.
ALTER TABLE usage_events
    DROP CONSTRAINT usage_events_team_id_fkey,
    DROP CONSTRAINT usage_events_key_id_fkey;
DROP INDEX usage_events_key_at_idx;
ALTER TABLE usage_events DROP COLUMN id;
ALTER TABLE usage_events
    DROP CONSTRAINT usage_events_event_id_key,
    ADD CONSTRAINT usage_events_pkey PRIMARY KEY (event_id);
