-- Daily totals of usage_events per team, day (UTC), key and model, kept by
-- Postgres itself as events arrive, so the totals, quota and export queries
-- read a few rows per day instead of one per request (usage_events grows by
-- one row per request: 10 M rows is a busy quarter).
--
-- Exact by construction: a statement-level trigger adds each statement's
-- inserted rows (its transition table) in the same transaction. A batch
-- that repeats stored events fails as a whole (COPY) and is rolled back
-- with its totals, or is written with ON CONFLICT DO NOTHING, whose
-- transition table holds only the rows really inserted: a retried batch is
-- never counted twice, and a committed event is never missing from its day.
-- Rows are upserted in key order, so two gateways' batches lock shared
-- rows in one order and cannot deadlock.
CREATE TABLE usage_daily (
    team_id           UUID NOT NULL,
    day               DATE NOT NULL,
    key_id            UUID,
    model             TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    errors            BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms_sum    DOUBLE PRECISION NOT NULL,
    -- Requests with a time to first token (streamed replies) and its sum.
    streamed          BIGINT NOT NULL,
    ttft_ms_sum       DOUBLE PRECISION NOT NULL,
    first_at          TIMESTAMPTZ NOT NULL,
    last_at           TIMESTAMPTZ NOT NULL,
    CONSTRAINT usage_daily_key UNIQUE NULLS NOT DISTINCT (team_id, day, key_id, model)
);
CREATE INDEX usage_daily_day_idx ON usage_daily (day);

CREATE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_daily AS d (team_id, day, key_id, model, requests, errors,
                                  prompt_tokens, completion_tokens, latency_ms_sum,
                                  streamed, ttft_ms_sum, first_at, last_at)
    SELECT team_id, (at AT TIME ZONE 'UTC')::date, key_id, model, count(*),
           count(*) FILTER (WHERE status >= 400),
           sum(prompt_tokens), sum(completion_tokens), sum(latency_ms),
           count(ttft_ms), COALESCE(sum(ttft_ms), 0), min(at), max(at)
      FROM new_events
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT ON CONSTRAINT usage_daily_key DO UPDATE SET
        requests          = d.requests + EXCLUDED.requests,
        errors            = d.errors + EXCLUDED.errors,
        prompt_tokens     = d.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
        latency_ms_sum    = d.latency_ms_sum + EXCLUDED.latency_ms_sum,
        streamed          = d.streamed + EXCLUDED.streamed,
        ttft_ms_sum       = d.ttft_ms_sum + EXCLUDED.ttft_ms_sum,
        first_at          = LEAST(d.first_at, EXCLUDED.first_at),
        last_at           = GREATEST(d.last_at, EXCLUDED.last_at);
    RETURN NULL;
END $$;

CREATE TRIGGER usage_events_rollup AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_add();

-- What is already there (the trigger's lock keeps writers out until this
-- migration commits, so nothing is counted twice or missed).
INSERT INTO usage_daily (team_id, day, key_id, model, requests, errors, prompt_tokens,
                         completion_tokens, latency_ms_sum, streamed, ttft_ms_sum,
                         first_at, last_at)
SELECT team_id, (at AT TIME ZONE 'UTC')::date, key_id, model, count(*),
       count(*) FILTER (WHERE status >= 400),
       sum(prompt_tokens), sum(completion_tokens), sum(latency_ms),
       count(ttft_ms), COALESCE(sum(ttft_ms), 0), min(at), max(at)
  FROM usage_events
 GROUP BY 1, 2, 3, 4;
