"""What ends up in history: git and git-annex through one runner, commits
holding exactly a job's paths, run records, path spellings and redaction."""
