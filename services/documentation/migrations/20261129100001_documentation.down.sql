DROP TABLE training_plan_versions;
DROP TABLE training_plans;
DROP TABLE session_note_amendments;
DROP TABLE session_notes;
DROP FUNCTION session_notes_signed_guard();
DROP FUNCTION client_granted(uuid);
DROP FUNCTION caller_acts_for(uuid);
