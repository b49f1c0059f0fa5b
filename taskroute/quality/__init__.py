"""Route quality in production: metrics from the request log, feedback, A/B variants, shadow
policies and budgets. Everything here reads or writes the `Store`'s SQLite log."""
