-- Search across meetings (search/): which embed artifact of each job the search index holds.
-- The gateway owns the index; its sync loop upserts a job's passages when the job's current
-- embed artifact differs from `artifact_id` here, and removes the points of jobs that are
-- gone (no foreign key on purpose: a deleted job's row is how the loop finds its points).
-- `resend`: the job's passages must be embedded again (a rename or a text correction came
-- while its embed stage was busy); the loop sends embed once that stage is free.
CREATE TABLE search_index (
    job_id      uuid PRIMARY KEY,
    artifact_id uuid,
    model_id    text,
    passages    integer NOT NULL DEFAULT 0,
    resend      boolean NOT NULL DEFAULT false,
    indexed_at  timestamptz NOT NULL DEFAULT now()
);
