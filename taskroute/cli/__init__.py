"""The `taskroute` command line: one module per noun, each with a `register(subparsers)`."""
