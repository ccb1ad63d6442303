-- Drops availability rules and exceptions.
DROP TABLE availability_exceptions;
DROP TABLE availability_rules;
