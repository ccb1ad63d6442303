-- Drops the notification intents and the cached trainer zones.
DROP TABLE trainer_zones;
DROP TABLE appointment_notifications;
