-- A client's invoices, oldest first, for the clients service's export of
-- that client (StreamClientInvoices): found without scanning every issuer's
-- invoices.
CREATE INDEX invoices_client_idx ON invoices (client_id, created_at, id);

-- validate:
-- SELECT to_regclass('invoices_client_idx') IS NOT NULL
