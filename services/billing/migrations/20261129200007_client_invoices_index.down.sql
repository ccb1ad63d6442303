DROP INDEX invoices_client_idx;
