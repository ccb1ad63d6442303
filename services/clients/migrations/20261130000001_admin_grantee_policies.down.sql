-- Removes the ADMIN grantees' share policies (their share writes then need
-- the system role again).
DROP POLICY client_permissions_admin_revoke ON client_permissions;
DROP POLICY client_permissions_admin_change ON client_permissions;
DROP POLICY client_permissions_admin_grant ON client_permissions;
DROP POLICY client_permissions_admin_read ON client_permissions;
DROP FUNCTION caller_administers(uuid);
DROP POLICY client_permissions_definer ON client_permissions;
