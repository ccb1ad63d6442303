DROP TABLE invoice_series;
DROP TABLE invoice_taxes;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP FUNCTION invoice_parts_guard();
DROP FUNCTION invoices_issued_guard();
DROP FUNCTION caller_acts_for(uuid);
