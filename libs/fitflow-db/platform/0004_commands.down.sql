DROP TABLE outbox_dead_letters;
DROP TABLE received_commands;
DROP TABLE command_outbox;
