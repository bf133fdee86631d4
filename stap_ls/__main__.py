import sys

from stap_ls.cli import main

sys.exit(main())
