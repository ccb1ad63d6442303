-- Whom an issued invoice or credit note was addressed to, as it was at
-- issue: the client's name, email and postal address from clients'
-- `GetContact` (purpose PAYMENT), sealed under the issuing trainer's data
-- key, so the record outlives a purge of the client (DESIGN.md §4) and
-- prints the same on every copy. Written once in the issuing transaction,
-- never changed. `language` is the document's (fr for a client in Quebec).

CREATE TABLE invoice_recipients (
    invoice_id       uuid        PRIMARY KEY REFERENCES invoices (id),
    issuer_id        uuid        NOT NULL,
    issuer_name      text        NOT NULL,
    recipient_sealed bytea       NOT NULL,
    language         text        NOT NULL CHECK (language IN ('en', 'fr')),
    taken_at         timestamptz NOT NULL DEFAULT now()
);

REVOKE UPDATE, DELETE, TRUNCATE ON invoice_recipients FROM fitflow_billing;

ALTER TABLE invoice_recipients ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_recipients FORCE ROW LEVEL SECURITY;
CREATE POLICY invoice_recipients_system ON invoice_recipients
    USING (current_user = 'fitflow_billing_system');
CREATE POLICY invoice_recipients_issuer ON invoice_recipients
    USING (caller_acts_for(issuer_id)) WITH CHECK (caller_acts_for(issuer_id));

-- validate:
-- SELECT (SELECT relforcerowsecurity FROM pg_class WHERE oid = 'invoice_recipients'::regclass)
--    AND NOT has_table_privilege('fitflow_billing', 'invoice_recipients', 'UPDATE')
--    AND NOT has_table_privilege('fitflow_billing', 'invoice_recipients', 'DELETE');
