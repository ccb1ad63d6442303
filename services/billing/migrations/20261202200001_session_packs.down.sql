DROP TABLE session_pack_draws;
DROP TABLE session_packs;
ALTER TABLE invoice_lines
    DROP CONSTRAINT invoice_lines_drawn,
    DROP CONSTRAINT invoice_lines_pack,
    DROP COLUMN drawn_pack_id,
    DROP COLUMN pack_expires_on,
    DROP COLUMN pack_sessions;
