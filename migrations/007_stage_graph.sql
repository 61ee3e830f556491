-- Stages run as a graph (core/graph.py): a stage with several inputs is queued by whichever
-- worker finishes its last input. `dispatched` records that its message was sent, set in
-- the same transaction that saw its inputs complete, so two workers finishing together
-- send it once; a replay clears it. Rows that are already past 'queued' were sent.
ALTER TABLE job_stages ADD COLUMN dispatched boolean NOT NULL DEFAULT false;
UPDATE job_stages SET dispatched = true WHERE status <> 'queued';
