DROP TABLE billed_items;
ALTER TABLE invoice_lines
    DROP CONSTRAINT invoice_lines_billed_item,
    DROP COLUMN charge,
    DROP COLUMN appointment_id;
