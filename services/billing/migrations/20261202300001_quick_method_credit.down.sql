-- Drops the quick method's credit (and its guard line).
CREATE OR REPLACE FUNCTION tax_remittances_filed_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'calculated' AND (
           NEW.trainer_id IS DISTINCT FROM OLD.trainer_id
        OR NEW.kind IS DISTINCT FROM OLD.kind
        OR NEW.period_start IS DISTINCT FROM OLD.period_start
        OR NEW.period_end IS DISTINCT FROM OLD.period_end
        OR NEW.gross_revenue IS DISTINCT FROM OLD.gross_revenue
        OR NEW.taxable_revenue IS DISTINCT FROM OLD.taxable_revenue
        OR NEW.tax_collected IS DISTINCT FROM OLD.tax_collected
        OR NEW.input_tax_credits IS DISTINCT FROM OLD.input_tax_credits
        OR NEW.net_tax IS DISTINCT FROM OLD.net_tax
        OR NEW.quick_method IS DISTINCT FROM OLD.quick_method
        OR NEW.quick_method_base IS DISTINCT FROM OLD.quick_method_base
        OR NEW.quick_method_remittance IS DISTINCT FROM OLD.quick_method_remittance
        OR NEW.filed_on IS DISTINCT FROM OLD.filed_on
        OR NEW.filing_reference IS DISTINCT FROM OLD.filing_reference
        OR (OLD.status = 'paid')) THEN
        RAISE EXCEPTION 'a filed remittance never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tax_remittances_filed_immutable';
    END IF;
    RETURN NEW;
END
$$;
ALTER TABLE tax_remittances DROP COLUMN quick_method_credit;
