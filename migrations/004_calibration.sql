-- Identification thresholds calibrated per speaker-embedding model (bench/calibrate.py).
-- A cosine threshold only means something for the model whose scores it was measured on,
-- so the row is keyed by the model id the encoder reports; identify looks up its own.
CREATE TABLE calibrations (
    model       text PRIMARY KEY,
    threshold   double precision NOT NULL,
    target_far  double precision NOT NULL,
    far         double precision NOT NULL,   -- false-accept rate measured at `threshold`
    frr         double precision NOT NULL,   -- false-reject rate measured at `threshold`
    details     jsonb NOT NULL DEFAULT '{}', -- data set, counts, score summaries
    created_at  timestamptz NOT NULL DEFAULT now()
);
