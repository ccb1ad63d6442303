-- Client invoices: drafts (editable, no number, no tax), then issued
-- (numbered without gaps, taxed, never changed again), or void. Rows belong
-- to the issuing trainer: FORCE row-level security admits whoever acts for
-- them. Money is NUMERIC(12,2) (DESIGN.md §6).

CREATE TABLE invoices (
    id                 uuid          PRIMARY KEY,
    issuer_id          uuid          NOT NULL,
    client_id          uuid          NOT NULL,
    status             text          NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'issued', 'void')),
    number             text,
    invoice_date       date,
    due_date           date,
    payment_terms_days integer       NOT NULL DEFAULT 30 CHECK (payment_terms_days BETWEEN 0 AND 120),
    subtotal           numeric(12,2) NOT NULL DEFAULT 0,
    tax_total          numeric(12,2) NOT NULL DEFAULT 0,
    total              numeric(12,2) NOT NULL DEFAULT 0,
    tax_registered     boolean       NOT NULL DEFAULT false,
    gst_hst_number     text          NOT NULL DEFAULT '',
    qst_number         text          NOT NULL DEFAULT '',
    notes              text          NOT NULL DEFAULT '',
    version            bigint        NOT NULL DEFAULT 1,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    issued_at          timestamptz,
    voided_at          timestamptz,
    void_reason        text          NOT NULL DEFAULT '',
    CONSTRAINT invoices_numbered_once_issued CHECK ((number IS NULL) = (issued_at IS NULL)),
    CONSTRAINT invoices_issue_dates CHECK ((issued_at IS NULL) = (invoice_date IS NULL)
                                           AND (invoice_date IS NULL) = (due_date IS NULL)),
    CONSTRAINT invoices_void_recorded CHECK ((status = 'void') = (voided_at IS NOT NULL)),
    CONSTRAINT invoices_total CHECK (total = subtotal + tax_total)
);
CREATE UNIQUE INDEX invoices_number_per_issuer ON invoices (issuer_id, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_issuer_idx ON invoices (issuer_id, created_at DESC, id DESC);

CREATE TABLE invoice_lines (
    invoice_id  uuid          NOT NULL REFERENCES invoices (id),
    position    integer       NOT NULL CHECK (position >= 1),
    issuer_id   uuid          NOT NULL,
    description text          NOT NULL CHECK (description <> ''),
    quantity    numeric(12,2) NOT NULL CHECK (quantity > 0),
    unit_price  numeric(12,2) NOT NULL CHECK (unit_price >= 0),
    amount      numeric(12,2) NOT NULL,
    province    text          NOT NULL,
    treatment   text          NOT NULL CHECK (treatment IN ('taxable', 'zero_rated', 'exempt')),
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE invoice_taxes (
    invoice_id uuid          NOT NULL REFERENCES invoices (id),
    position   integer       NOT NULL CHECK (position >= 1),
    issuer_id  uuid          NOT NULL,
    province   text          NOT NULL,
    kind       text          NOT NULL,
    percent    numeric(7,4)  NOT NULL,
    base       numeric(12,2) NOT NULL,
    amount     numeric(12,2) NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- The last number of each (issuer, document type, year). Issuing takes the
-- next one by updating this row in the issuing transaction: the row lock
-- orders concurrent issues, and a rolled-back issue gives its number back.
CREATE TABLE invoice_series (
    issuer_id   uuid    NOT NULL,
    doc_type    text    NOT NULL CHECK (doc_type IN ('invoice', 'credit_note')),
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
    last_number integer NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (issuer_id, doc_type, year)
);

-- An issued invoice never changes: only its void status may be recorded.
CREATE FUNCTION invoices_issued_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (
           NEW.number IS DISTINCT FROM OLD.number
        OR NEW.invoice_date IS DISTINCT FROM OLD.invoice_date
        OR NEW.due_date IS DISTINCT FROM OLD.due_date
        OR NEW.subtotal IS DISTINCT FROM OLD.subtotal
        OR NEW.tax_total IS DISTINCT FROM OLD.tax_total
        OR NEW.total IS DISTINCT FROM OLD.total
        OR NEW.client_id IS DISTINCT FROM OLD.client_id
        OR NEW.issuer_id IS DISTINCT FROM OLD.issuer_id
        OR NEW.notes IS DISTINCT FROM OLD.notes
        OR NEW.payment_terms_days IS DISTINCT FROM OLD.payment_terms_days
        OR (OLD.status = 'void' AND NEW.status <> 'void')) THEN
        RAISE EXCEPTION 'an issued invoice never changes'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoices_issued_immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER invoices_issued_guard BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_issued_guard();

-- Lines and taxes of a non-draft invoice are frozen too.
CREATE FUNCTION invoice_parts_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = billing, pg_temp
AS $$
DECLARE
    target uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
BEGIN
    IF TG_TABLE_NAME = 'invoice_lines'
       AND EXISTS (SELECT 1 FROM invoices WHERE id = target AND status <> 'draft') THEN
        RAISE EXCEPTION 'the lines of an issued invoice never change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoices_issued_immutable';
    END IF;
    IF TG_TABLE_NAME = 'invoice_taxes' AND TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'the taxes of an issued invoice never change'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoices_issued_immutable';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER invoice_lines_guard BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_parts_guard();
CREATE TRIGGER invoice_taxes_guard BEFORE UPDATE OR DELETE ON invoice_taxes
    FOR EACH ROW EXECUTE FUNCTION invoice_parts_guard();

-- Whether the calling user acts for `trainer` (the trainer or a supervisor).
CREATE FUNCTION caller_acts_for(trainer uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT trainer::text = current_setting('fitflow.user_id', true)
        OR trainer::text = ANY (string_to_array(NULLIF(current_setting('fitflow.supervised', true), ''), ','))
$$;

REVOKE DELETE, TRUNCATE ON invoices, invoice_taxes, invoice_series FROM fitflow_billing;
REVOKE TRUNCATE ON invoice_lines FROM fitflow_billing;

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;
CREATE POLICY invoices_system ON invoices USING (current_user = 'fitflow_billing_system');
CREATE POLICY invoices_issuer ON invoices
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY invoice_lines_system ON invoice_lines USING (current_user = 'fitflow_billing_system');
CREATE POLICY invoice_lines_issuer ON invoice_lines
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

ALTER TABLE invoice_taxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_taxes FORCE ROW LEVEL SECURITY;
CREATE POLICY invoice_taxes_system ON invoice_taxes USING (current_user = 'fitflow_billing_system');
CREATE POLICY invoice_taxes_issuer ON invoice_taxes
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

ALTER TABLE invoice_series ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_series FORCE ROW LEVEL SECURITY;
CREATE POLICY invoice_series_system ON invoice_series USING (current_user = 'fitflow_billing_system');
CREATE POLICY invoice_series_issuer ON invoice_series
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

-- validate:
-- SELECT (SELECT bool_and(relforcerowsecurity) FROM pg_class
--         WHERE oid IN ('invoices'::regclass, 'invoice_lines'::regclass,
--                       'invoice_taxes'::regclass, 'invoice_series'::regclass))
--    AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'invoices_issued_guard')
--    AND NOT has_table_privilege('fitflow_billing', 'invoices', 'DELETE');
