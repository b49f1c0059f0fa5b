"""One script per figure the issues ask for (a package only so that one bench can reuse
another's load generator: bench/scale.py uses bench/gateway.py's)."""
