import sys

from unetskip.ablation.command import main

if __name__ == "__main__":
    sys.exit(main())
