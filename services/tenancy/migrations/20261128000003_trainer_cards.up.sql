-- A studio's managers may read the profile card of a trainer they have a
-- contract with (invited, active, declined or ended): who is this trainer.
-- The service clears the private fields (rates, tax profile, settings) of a
-- card; this policy only lets the row be read. contracts' own policies do not
-- read trainers, so this cannot recurse.
CREATE POLICY trainers_contracted ON trainers FOR SELECT
    USING (EXISTS (SELECT 1 FROM contracts c
                   WHERE c.trainer_id = trainers.id AND caller_manages_studio(c.studio_id)));

-- validate:
-- SELECT EXISTS (SELECT 1 FROM pg_policies WHERE tablename = 'trainers' AND policyname = 'trainers_contracted');
