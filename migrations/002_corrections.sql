-- A person's corrections to a job's result (rename a speaker, later: reassign words, fix
-- text). Kept as their own records and applied when the result is read, so the stage
-- artifacts stay exactly what the models produced.
CREATE TABLE corrections (
    id          uuid PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_job ON corrections (job_id, created_at);
