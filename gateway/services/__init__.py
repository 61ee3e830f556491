"""What the gateway does, one module per area and one function per use case, called by the
routes (gateway/routes, which only translate HTTP), by the gateway's background loops
(retention in gateway/app.py, the search index sync) and by tests.

- `container.py`: `Services`, what the gateway talks to (PostgreSQL stores, the artifact
  store, Redis events, the queue, the search index), opened once per process;
- `transcripts.py`: a job's result as people read it (corrections applied);
- `search.py`: search across meetings, and sending a job's embed stage again;
  `search_sync.py`: the loop that keeps the index in step with the embed artifacts;
- `voiceprints.py`: consent and expiry, enrolling from clips, naming a job's speaker.

`Services` is exported here too, as the name callers import.
"""

from gateway.services.container import Services

__all__ = ["Services"]
