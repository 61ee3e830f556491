"""Redis messaging: job progress events (Stream + Pub/Sub) and the stage task queue."""
