import sys

from unetskip.cli import main
from unetskip.demo import main as demo_main

if __name__ == "__main__":
    if sys.argv[1:2] == ["demo"]:  # not a LightningCLI subcommand (those are fixed): its own parser
        demo_main(sys.argv[2:])
    else:
        main()
