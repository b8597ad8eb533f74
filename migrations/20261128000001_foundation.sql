-- Foundation: a single row that records when this installation was first set
-- up, so the status page can say how long the database has been in use.
CREATE TABLE installation (
    id          BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO installation DEFAULT VALUES;
