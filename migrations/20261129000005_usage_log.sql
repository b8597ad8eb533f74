-- Usage events are an append-only log written at request rate (binary COPY
-- in batches). Measured on the CI machine: the two foreign-key checks (a
-- FOR KEY SHARE look-up of the team and of the key for every row) cost
-- twice the insert itself, and every index is paid on every row. Teams and
-- keys are never deleted (keys are revoked, teams archived), and the
-- gateway only writes ids it has just read from Postgres, so the log keeps
-- its ids without the checks.
--
-- One index serves everything: the primary key (team_id, at, event_id).
-- Every read is one team's events over a time range, newest first; and a
-- batch written twice (a retry after a commit whose answer was lost, a
-- spool replayed again) repeats its events exactly, so it conflicts on this
-- key and is stored once. event_id is made by the gateway (time-ordered,
-- unique per process and counter).
ALTER TABLE usage_events
    DROP CONSTRAINT usage_events_team_id_fkey,
    DROP CONSTRAINT usage_events_key_id_fkey;
DROP INDEX usage_events_key_at_idx;
DROP INDEX usage_events_team_at_idx;
ALTER TABLE usage_events DROP COLUMN id;
ALTER TABLE usage_events
    DROP CONSTRAINT usage_events_event_id_key,
    ADD CONSTRAINT usage_events_pkey PRIMARY KEY (team_id, at, event_id);
