-- Reverts operator-added quick-method rates. Refused while an operator has
-- added one: a published rate remittances may have used is never deleted.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM quick_method_rates WHERE created_by IS NOT NULL) THEN
        RAISE EXCEPTION 'operators added quick-method rates; they are not deleted';
    END IF;
END
$$;

DROP POLICY quick_method_rates_end ON quick_method_rates;
DROP POLICY quick_method_rates_add ON quick_method_rates;
REVOKE UPDATE (valid_until) ON quick_method_rates FROM fitflow_billing;
REVOKE INSERT ON quick_method_rates FROM fitflow_billing;
ALTER TABLE quick_method_rates DROP COLUMN created_by;
