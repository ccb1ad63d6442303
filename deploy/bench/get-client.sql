-- pgbench replay of the SQL of one clients GetClient as it was sent before
-- the read and its access event became one statement
-- (deploy/bench/get-client-one.sql): the transaction, the row-level-security
-- context, the row with the caller's share, the access event into the
-- outbox and its notification, COMMIT — five statements, the floor for
-- doing this work naively. `fitflow bench --scenario get-client` runs it
-- beside the RPC at the same concurrency and prints the ratio; run by hand:
--   pgbench -n -M prepared -f deploy/bench/get-client.sql -c 8 -j 2 -T 10 \
--     -D "uid=<trainer uuid>" -D "cid=<client uuid>" -D "payload=<\x hex of an event>" \
--     "$FITFLOW_CLIENTS_DATABASE_URL"
-- It connects as the clients runtime role, so row-level security applies.
-- `payload` is an encoded access event without its id (field 1); each row
-- gets a fresh id, written both in the row and first in the payload
-- (0x0a 0x24 + the 36-character UUID), so the relay delivers the rows as the
-- real events they are instead of stalling on them.
BEGIN;
SELECT set_config('fitflow.user_id', :uid, true), set_config('fitflow.roles', 'trainer', true), set_config('fitflow.supervised', '', true);
SELECT c.id, c.trainer_id, c.first_name, c.last_name, c.email, c.phone, c.date_of_birth, c.emergency_contact, c.medical_info, c.goals, c.address, c.preferences, c.source, c.status, c.consent_version, c.consent_time, c.version, c.created_at, c.updated_at, c.deleted_at, p.permission_level AS share_level FROM clients.clients c LEFT JOIN clients.client_permissions p ON p.client_id = c.id AND p.trainer_id = :uid::uuid WHERE c.id = :cid::uuid;
WITH id AS (SELECT gen_random_uuid() AS value), recorded AS (INSERT INTO clients.audit_outbox (event_id, payload) SELECT value, '\x0a24'::bytea || convert_to(value::text, 'UTF8') || :payload::bytea FROM id RETURNING 1) SELECT pg_notify('fitflow_audit_outbox', '') FROM recorded;
COMMIT;
