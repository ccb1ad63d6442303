DROP TABLE tax_rates;
DROP FUNCTION caller_is_operator();
