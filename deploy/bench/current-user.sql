-- pgbench replay of the SQL of one identity GetCurrentUser as it was sent
-- before the context and BEGIN shared one message: the transaction, the
-- row-level-security context, the user's row, COMMIT — four statements,
-- the floor for doing this work naively. `fitflow bench --scenario
-- compare` (deploy/bench/compare) runs it beside the RPC at the same
-- concurrency and prints the ratio; run by hand:
--   pgbench -n -M prepared -f deploy/bench/current-user.sql -c 16 -j 4 -T 10 \
--     -D "uid=<user uuid>" "$FITFLOW_IDENTITY_DATABASE_URL"
-- It connects as the identity runtime role, so row-level security applies.
BEGIN;
SELECT set_config('fitflow.user_id', :uid, true), set_config('fitflow.roles', '', true), set_config('fitflow.supervised', '', true);
SELECT id, email, email_verified, password_hash, display_name_sealed, roles, mfa_enabled, status, created_at, last_login_at, deleted_at, mfa_secret_sealed, mfa_last_step, version FROM identity.users WHERE id = :uid::uuid;
COMMIT;
