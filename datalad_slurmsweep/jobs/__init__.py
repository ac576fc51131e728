"""The domain: typed jobs, the store, the one submission pipeline, finishing
(reconcile, classify, commit, wait) and replaying records."""
