-- Access control: tenants hold API keys; jobs and voiceprints belong to a tenant.
-- A NULL owner is the single-user (embedded) owner, so rows made before keys existed stay
-- valid and stay visible when auth is off.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the sha256 of a key is stored; `prefix` (the token's first characters) finds the
-- row, the hash is then compared in constant time. Limits are per key; NULL: the server's.
CREATE TABLE api_keys (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                text NOT NULL,
    hash                text NOT NULL,
    prefix              text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz,
    max_upload_bytes    bigint,
    max_duration_s      double precision,
    max_concurrent_jobs integer
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

ALTER TABLE jobs ADD COLUMN owner uuid REFERENCES tenants (id) ON DELETE CASCADE;
-- The duration limit of the key that created the job, enforced by the decode stage.
ALTER TABLE jobs ADD COLUMN max_duration_s double precision;
CREATE INDEX jobs_owner ON jobs (owner, created_at DESC);
ALTER TABLE speakers ADD COLUMN owner uuid REFERENCES tenants (id) ON DELETE CASCADE;
CREATE INDEX speakers_owner ON speakers (owner);

-- Secrets the gateways share (the SSE token signing key when settings leave it unset).
CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
