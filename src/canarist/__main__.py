import sys

from canarist.cli.main import main

sys.exit(main())
