"""`taskroute demo`'s parts: a policy aimed at the SIMULATED upstream, and the workload."""
