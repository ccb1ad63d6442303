-- The sales-tax table (DESIGN.md §6): statutory rates as data with
-- effective dates, one row per (province, tax) version. Not tenant data:
-- every user reads it; only operators add versions (through AddTaxRate,
-- audited), and no row is ever deleted, so an invoice's tax can always be
-- recomputed from the table as of its date.

CREATE TABLE tax_rates (
    id                  uuid         PRIMARY KEY,
    -- Two-letter code; NULL for the federal GST, which applies everywhere.
    province            text         CHECK (province IN ('AB','BC','MB','NB','NL','NS','NT','NU','ON','PE','QC','SK','YT')),
    kind                text         NOT NULL CHECK (kind IN ('GST','HST','QST','PST','RST')),
    percent             numeric(7,4) NOT NULL CHECK (percent >= 0 AND percent <= 100),
    valid_from          date         NOT NULL,
    valid_until         date         CHECK (valid_until IS NULL OR valid_until >= valid_from),
    applies_to_services boolean      NOT NULL,
    source              text         NOT NULL CHECK (source <> ''),
    created_by          uuid,
    created_at          timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT tax_rates_scope CHECK ((kind = 'GST') = (province IS NULL))
);
-- One open-ended version per (province, tax); AddTaxRate closes the open
-- one in the transaction that adds the next, under an advisory lock.
CREATE UNIQUE INDEX tax_rates_one_open ON tax_rates (coalesce(province, 'CA'), kind)
    WHERE valid_until IS NULL;
CREATE INDEX tax_rates_lookup ON tax_rates (coalesce(province, 'CA'), kind, valid_from);

REVOKE DELETE, TRUNCATE ON tax_rates FROM fitflow_billing;

INSERT INTO tax_rates (id, province, kind, percent, valid_from, valid_until, applies_to_services, source) VALUES
  (gen_random_uuid(), NULL, 'GST', 5, '2008-01-01', NULL, true,
   'Excise Tax Act s. 165(1); CRA GST/HST rates'),
  (gen_random_uuid(), 'ON', 'HST', 13, '2010-07-01', NULL, true,
   'Excise Tax Act Sch. VIII; CRA GST/HST rates (ON 13%)'),
  (gen_random_uuid(), 'NB', 'HST', 15, '2016-07-01', NULL, true,
   'CRA GST/HST rates (NB 15% from 2016-07-01)'),
  (gen_random_uuid(), 'NL', 'HST', 15, '2016-07-01', NULL, true,
   'CRA GST/HST rates (NL 15% from 2016-07-01)'),
  (gen_random_uuid(), 'PE', 'HST', 15, '2016-10-01', NULL, true,
   'CRA GST/HST rates (PE 15% from 2016-10-01)'),
  (gen_random_uuid(), 'NS', 'HST', 15, '2010-07-01', '2025-03-31', true,
   'CRA GST/HST rates (NS 15% until 2025-03-31)'),
  (gen_random_uuid(), 'NS', 'HST', 14, '2025-04-01', NULL, true,
   'CRA GST/HST Notice: NS HST 14% from 2025-04-01'),
  (gen_random_uuid(), 'QC', 'QST', 9.975, '2013-01-01', NULL, true,
   'Act respecting the Quebec sales tax; Revenu Québec: QST applies to most services, personal training included'),
  (gen_random_uuid(), 'MB', 'RST', 7, '2019-07-01', NULL, false,
   'The Retail Sales Tax Act (MB), taxable services list: personal-training and fitness instruction are not among them'),
  (gen_random_uuid(), 'BC', 'PST', 7, '2013-04-01', NULL, false,
   'Provincial Sales Tax Act (BC), Bulletin PST 301: fitness and personal-training services are not taxable services'),
  (gen_random_uuid(), 'SK', 'PST', 6, '2017-03-23', NULL, false,
   'The Provincial Sales Tax Act (SK), taxable services: personal training is not a taxable service (memberships and admissions are; confirm per offering)');

-- After the seed: FORCE applies to the owner too.
-- Whether the calling user is an operator (the token's roles).
CREATE FUNCTION caller_is_operator() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT 'operator' = ANY (string_to_array(NULLIF(current_setting('fitflow.roles', true), ''), ','))
$$;

ALTER TABLE tax_rates ENABLE ROW LEVEL SECURITY;
ALTER TABLE tax_rates FORCE ROW LEVEL SECURITY;
CREATE POLICY tax_rates_system ON tax_rates
    USING (current_user = 'fitflow_billing_system');
CREATE POLICY tax_rates_read ON tax_rates FOR SELECT USING (true);
CREATE POLICY tax_rates_add ON tax_rates FOR INSERT WITH CHECK (caller_is_operator());
CREATE POLICY tax_rates_end ON tax_rates FOR UPDATE
    USING (caller_is_operator()) WITH CHECK (caller_is_operator());


-- validate:
-- SELECT (SELECT count(*) FROM tax_rates) >= 11
--    AND (SELECT percent FROM tax_rates WHERE province = 'NS' AND valid_from = '2025-04-01') = 14
--    AND NOT has_table_privilege('fitflow_billing', 'tax_rates', 'DELETE')
--    AND (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'tax_rates'::regclass);
