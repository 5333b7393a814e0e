-- What the runtime role (trellis_writer) does with the read models: the
-- projection runner writes documents with their checkpoint, a rebuild
-- writes a new generation and deletes retired ones, and the read side reads
-- them. The analyst views (rep_profiles, growth_timeline, …) are for other
-- readers: the service reads the tables, so they grant it nothing.
GRANT SELECT, INSERT, UPDATE, DELETE ON trellis.projection_checkpoints, trellis.read_models
    TO trellis_writer;
