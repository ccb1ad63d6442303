DROP TABLE quick_method_rates;
DROP TABLE tax_remittances;
DROP FUNCTION tax_remittances_filed_guard();
