-- Jobs, their stages, every artifact with its provenance, and enrolled voiceprints.
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    filename        text,
    content_type    text,
    size_bytes      bigint NOT NULL,
    upload_uri      text NOT NULL,
    upload_sha256   text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    duration_s      double precision,
    language        text,
    error_stage     text,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX jobs_created_at ON jobs (created_at DESC);

CREATE TABLE artifacts (
    id          uuid PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage       text NOT NULL,
    version     integer NOT NULL,
    key         text NOT NULL,          -- hash of inputs + params + model
    uri         text NOT NULL,
    sha256      text NOT NULL,
    size_bytes  bigint NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}',
    model       text,
    inputs      uuid[] NOT NULL DEFAULT '{}',
    started_at  timestamptz,
    finished_at timestamptz,
    worker      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, stage, key),
    UNIQUE (job_id, stage, version)
);

CREATE TABLE job_stages (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage       text NOT NULL,
    position    integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'queued', 'running', 'succeeded', 'failed')),
    artifact_id uuid REFERENCES artifacts (id) ON DELETE SET NULL,
    reused      boolean NOT NULL DEFAULT false,
    attempts    integer NOT NULL DEFAULT 0,
    worker      text,
    error       text,
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (job_id, stage)
);

CREATE TABLE speakers (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    model       text NOT NULL,           -- embedding model that made the voiceprint
    embedding   real[] NOT NULL,
    clip_uris   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
