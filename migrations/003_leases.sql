-- Leases: the worker running a stage holds (job, stage) until lease_expires_at and renews it
-- while it works. A redelivered message that finds a live lease held by another worker
-- leaves the stage alone; a lease that expired while the stage is 'running' means its
-- worker died, and the stage is taken over (stages/recovery.py).
ALTER TABLE job_stages ADD COLUMN lease_owner text;
ALTER TABLE job_stages ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX job_stages_running_lease ON job_stages (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_active ON jobs (updated_at) WHERE status IN ('queued', 'running');
-- Set false when a job's outcome is committed and true once its final event (job.succeeded
-- or job.failed) is out, so a crash between the two is repaired by the reaper, once.
ALTER TABLE jobs ADD COLUMN terminal_published boolean NOT NULL DEFAULT true;
