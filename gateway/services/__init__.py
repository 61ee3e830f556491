"""What the gateway does, one module per area and one function per use case, called by the
routes (gateway/routes, which only translate HTTP), by the gateway's background loops
(retention in gateway/app.py, the search index sync) and by tests.

- `container.py`: `Services`, what the gateway talks to (the PostgreSQL stores and stage
  leases, the artifact store, Redis events, the queue, the search index), opened once per
  process and passed to every function here as its first argument;
- `jobs.py`: receive an upload (the preamble jobs and enrollments share), create a job,
  enqueue, replay a stage (the one implementation), delete a job everywhere (the one
  implementation, for DELETE and the retention sweep);
- `corrections.py`: list, add and undo corrections to a job's result;
- `voiceprints.py`: consent and expiry, enrolling from clips, listing and forgetting
  speakers, naming a job's speaker (which may keep their voice);
- `transcripts.py`: a job's result as people read it, its artifacts, its decoded audio;
- `keys.py`: an admin key's administration of its tenant's keys;
- `metrics.py`: identification's accuracy, from the renames people make;
- `search.py`: search across meetings, sending a job's embed stage again, reindexing;
  `search_sync.py`: the loop that keeps the index in step with the embed artifacts;
  `index.py`: what the index holds of a job (which stage feeds it, removing a job).

`Services` is exported here too, as the name callers import.
"""

from gateway.services.container import Services

__all__ = ["Services"]
