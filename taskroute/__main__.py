import sys

from taskroute.cli.main import main

sys.exit(main())
