DROP TABLE bank_accounts;
DROP FUNCTION caller_is(uuid);
