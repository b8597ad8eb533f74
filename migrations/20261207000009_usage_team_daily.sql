-- Daily totals per team, day (UTC) and model, without the key: what the
-- totals, the month's tokens, the per-model table and the admin ranking
-- read (usage_daily, per key, holds a row per key and day: 10 000 keys make
-- the ranking of a month read 300 000 rows; this reads a few thousand).
-- Kept exactly as usage_daily is: a statement-level trigger adds each
-- statement's inserted rows in the same transaction (see
-- 20261207000007_usage_rollup.sql for why that counts every committed event
-- once, retried batches included).
CREATE TABLE usage_team_daily (
    team_id           UUID NOT NULL,
    day               DATE NOT NULL,
    model             TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    errors            BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms_sum    DOUBLE PRECISION NOT NULL,
    streamed          BIGINT NOT NULL,
    ttft_ms_sum       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (team_id, day, model)
);
CREATE INDEX usage_team_daily_day_idx ON usage_team_daily (day, team_id);

CREATE FUNCTION usage_team_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_team_daily AS d (team_id, day, model, requests, errors, prompt_tokens,
                                       completion_tokens, latency_ms_sum, streamed, ttft_ms_sum)
    SELECT team_id, (at AT TIME ZONE 'UTC')::date, model, count(*),
           count(*) FILTER (WHERE status >= 400),
           sum(prompt_tokens), sum(completion_tokens), sum(latency_ms),
           count(ttft_ms), COALESCE(sum(ttft_ms), 0)
      FROM new_events
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    ON CONFLICT (team_id, day, model) DO UPDATE SET
        requests          = d.requests + EXCLUDED.requests,
        errors            = d.errors + EXCLUDED.errors,
        prompt_tokens     = d.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
        latency_ms_sum    = d.latency_ms_sum + EXCLUDED.latency_ms_sum,
        streamed          = d.streamed + EXCLUDED.streamed,
        ttft_ms_sum       = d.ttft_ms_sum + EXCLUDED.ttft_ms_sum;
    RETURN NULL;
END $$;

CREATE TRIGGER usage_events_team_rollup AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_team_daily_add();

-- What is already there, from the per-key rollup (the trigger's lock keeps
-- writers out until this migration commits).
INSERT INTO usage_team_daily (team_id, day, model, requests, errors, prompt_tokens,
                              completion_tokens, latency_ms_sum, streamed, ttft_ms_sum)
SELECT team_id, day, model, sum(requests), sum(errors), sum(prompt_tokens),
       sum(completion_tokens), sum(latency_ms_sum), sum(streamed), sum(ttft_ms_sum)
  FROM usage_daily
 GROUP BY 1, 2, 3;
