-- Recurring series: occurrences share a series id (BookSeries).
ALTER TABLE appointments ADD COLUMN series_id uuid;
CREATE INDEX appointments_series_idx ON appointments (series_id) WHERE series_id IS NOT NULL;

-- validate:
-- SELECT EXISTS (SELECT 1 FROM information_schema.columns
--                WHERE table_schema = current_schema() AND table_name = 'appointments'
--                  AND column_name = 'series_id');
