"""One script per figure the issues ask for (a package only so that benches can share code:
bench/processes.py starts and stops the processes they measure, and bench/scale.py uses
bench/gateway.py's load generator)."""
