"""Parameter sweeps: configuration, expansion into points, clones, JSON
edits, batch scripts, planning, submission through the jobs pipeline, and
notifications."""
