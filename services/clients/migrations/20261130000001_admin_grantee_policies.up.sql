-- An ADMIN grantee manages a client's other shares under row-level security,
-- as the owner does, instead of switching its transaction to the system
-- role: the runtime role may no longer become the system role (the system
-- role logs in with its own credential and serves maintenance work only).
--
-- A policy on client_permissions cannot read client_permissions itself (the
-- read would apply the same policies again: infinite recursion), so the
-- question "is the caller an ADMIN grantee of this client" is answered by a
-- SECURITY DEFINER function run as the schema owner, whom one read-only
-- policy lets see the shares. The policies that call it apply to the
-- runtime role only, so the owner's read inside the function never calls it
-- again. search_path is pinned so a caller cannot redirect the function to a
-- table of its own.
CREATE POLICY client_permissions_definer ON client_permissions FOR SELECT
    TO fitflow_clients_owner USING (true);

CREATE FUNCTION caller_administers(client uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = clients, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM clients.client_permissions p
                   WHERE p.client_id = client
                     AND p.trainer_id::text = current_setting('fitflow.user_id', true)
                     AND p.permission_level = 'admin')
$$;
REVOKE ALL ON FUNCTION caller_administers(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caller_administers(uuid) TO fitflow_clients;

CREATE POLICY client_permissions_admin_read ON client_permissions FOR SELECT
    TO fitflow_clients USING (caller_administers(client_id));
CREATE POLICY client_permissions_admin_grant ON client_permissions FOR INSERT
    TO fitflow_clients WITH CHECK (caller_administers(client_id));
CREATE POLICY client_permissions_admin_change ON client_permissions FOR UPDATE
    TO fitflow_clients USING (caller_administers(client_id))
    WITH CHECK (caller_administers(client_id));
CREATE POLICY client_permissions_admin_revoke ON client_permissions FOR DELETE
    TO fitflow_clients USING (caller_administers(client_id));

-- validate:
-- SELECT to_regprocedure('caller_administers(uuid)') IS NOT NULL
--    AND (SELECT prosecdef FROM pg_proc WHERE oid = to_regprocedure('caller_administers(uuid)'))
--    AND has_function_privilege('fitflow_clients', 'caller_administers(uuid)', 'EXECUTE')
--    AND (SELECT count(*) FROM pg_policies
--         WHERE schemaname = current_schema() AND tablename = 'client_permissions'
--           AND policyname IN ('client_permissions_definer', 'client_permissions_admin_read',
--                              'client_permissions_admin_grant', 'client_permissions_admin_change',
--                              'client_permissions_admin_revoke')) = 5;
