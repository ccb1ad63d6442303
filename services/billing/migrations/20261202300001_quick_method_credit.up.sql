-- The quick method's 1% credit on the fiscal year's first $30,000 of
-- eligible supplies, kept with each quick-method remittance. Remittances
-- calculated before it keep NULL (no credit was taken); a filed one's
-- credit never changes, as its other figures.
ALTER TABLE tax_remittances ADD COLUMN quick_method_credit numeric(12,2)
    CONSTRAINT tax_remittances_quick_credit
        CHECK (quick_method_credit >= 0 AND (quick_method OR quick_method_credit IS NULL));

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
        OR NEW.quick_method_credit IS DISTINCT FROM OLD.quick_method_credit
        OR NEW.filed_on IS DISTINCT FROM OLD.filed_on
        OR NEW.filing_reference IS DISTINCT FROM OLD.filing_reference
        OR (OLD.status = 'paid')) THEN
        RAISE EXCEPTION 'a filed remittance never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'tax_remittances_filed_immutable';
    END IF;
    RETURN NEW;
END
$$;

-- validate:
-- SELECT EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_schema = 'billing' AND table_name = 'tax_remittances'
--                  AND column_name = 'quick_method_credit')
--    AND pg_get_functiondef('tax_remittances_filed_guard'::regproc) LIKE '%quick_method_credit%';
