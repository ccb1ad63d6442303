-- Operators add quick-method rates as they are published
-- (AddQuickMethodRate), as they add tax rates: inserted under an operator's
-- token only, audited by the service, and a version is only ever ended
-- (`valid_until`), never otherwise changed or deleted. The rates the seed
-- left out (supplies outside the establishment's region, Nova Scotia's 14%
-- HST) are entered this way once verified against the publication.

ALTER TABLE quick_method_rates ADD COLUMN created_by uuid;

GRANT INSERT ON quick_method_rates TO fitflow_billing;
GRANT UPDATE (valid_until) ON quick_method_rates TO fitflow_billing;

CREATE POLICY quick_method_rates_add ON quick_method_rates FOR INSERT
    WITH CHECK (caller_is_operator() AND created_by IS NOT NULL);
CREATE POLICY quick_method_rates_end ON quick_method_rates FOR UPDATE
    USING (caller_is_operator()) WITH CHECK (caller_is_operator());

-- validate:
-- SELECT has_table_privilege('fitflow_billing', 'quick_method_rates', 'INSERT')
--    AND NOT has_table_privilege('fitflow_billing', 'quick_method_rates', 'DELETE')
--    AND NOT has_column_privilege('fitflow_billing', 'quick_method_rates', 'percent', 'UPDATE')
--    AND EXISTS (SELECT 1 FROM pg_policy WHERE polname = 'quick_method_rates_add')
