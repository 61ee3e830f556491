-- An admin key administers its own tenant's API keys over HTTP (create, list, revoke).
-- Keys made before this column are plain keys; `scribe keys create --admin` makes the first.
ALTER TABLE api_keys ADD COLUMN admin boolean NOT NULL DEFAULT false;
