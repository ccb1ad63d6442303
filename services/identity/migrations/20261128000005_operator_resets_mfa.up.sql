-- An operator resets the MFA of a user who lost their authenticator
-- (ResetUserMfa), which removes that user's recovery codes: operators get the
-- same row-level access to them as to users and sessions. Expand only.
CREATE POLICY mfa_recovery_codes_operator ON mfa_recovery_codes
    USING ('operator' = ANY (string_to_array(current_setting('fitflow.roles', true), ',')));

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_policies
--   WHERE tablename = 'mfa_recovery_codes' AND policyname = 'mfa_recovery_codes_operator');
