"""Data files shipped with taskroute: the default policy, the task classifier, examples."""
