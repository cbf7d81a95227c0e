"""`python -m edge_asc ...`: the same commands as the `edge-asc` script, for launchers such as
torchrun that start a module rather than a console script."""

from edge_asc.cli import main

if __name__ == "__main__":
    main()
