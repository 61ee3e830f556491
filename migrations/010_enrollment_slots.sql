-- An enrollment from clips counts against its key's max_concurrent_jobs like a job, for as
-- long as the gateway waits for the worker's answer (storage/limits.py). The row is deleted
-- when the enrollment ends, however it ends; a gateway that died before deleting it leaves
-- a row that stops counting at `expires_at` (past the longest wait) and is removed by the
-- tenant's next claim.
CREATE TABLE enrollment_slots (
    id          uuid PRIMARY KEY,
    owner       uuid REFERENCES tenants (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX enrollment_slots_owner ON enrollment_slots (owner, expires_at);
