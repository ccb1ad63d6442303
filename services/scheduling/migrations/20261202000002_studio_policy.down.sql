-- Drops studios' cancellation policies; trainers' own apply again everywhere.
DROP TABLE studio_cancellation_policies;
