-- A demo session for local development, safe to run repeatedly.
-- Publish to it with stream key "demo-stream-key" (never seed real keys).
insert into streaming_sessions (id, client_id, stream_key_hash)
values (
  '00000000-0000-4000-8000-000000000001',
  '00000000-0000-4000-8000-0000000000c1',
  sha256(convert_to('demo-stream-key', 'UTF8'))
)
on conflict (id) do nothing;
