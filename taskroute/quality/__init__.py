"""Route quality in production: metrics from the request log, feedback, A/B variants, shadow
policies and budgets. The arithmetic and the rules only: the log is read and written through the
`Store` and `LogReader` Protocols (`taskroute.store`), which this package does not import at
run time."""
