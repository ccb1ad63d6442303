-- Studio managers no longer read the cards of their contracted trainers.
DROP POLICY trainers_contracted ON trainers;
