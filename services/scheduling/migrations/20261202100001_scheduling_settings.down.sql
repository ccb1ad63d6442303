-- Drops trainers' scheduling settings (searches fall back to no buffer).
DROP TABLE scheduling_settings;
