-- Voiceprint governance: who agreed to their voice being kept, where the voiceprint came
-- from and until when it may be kept. All nullable, so voiceprints enrolled before stay
-- valid (they read as "consent not recorded", source unknown, no expiry).
ALTER TABLE speakers ADD COLUMN consent_by text;
ALTER TABLE speakers ADD COLUMN consent_at timestamptz;
ALTER TABLE speakers ADD COLUMN consent_note text;
-- 'clips' (enrolled from uploaded clips) or 'job:<job id>:<speaker label>' (remembered
-- from a job's speaker).
ALTER TABLE speakers ADD COLUMN source text;
-- Past this instant the voiceprint is no longer used and the periodic sweep deletes it
-- with its enrollment clips.
ALTER TABLE speakers ADD COLUMN expires_at timestamptz;
CREATE INDEX speakers_expires_at ON speakers (expires_at) WHERE expires_at IS NOT NULL;
