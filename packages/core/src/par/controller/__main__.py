"""``python -m par.controller``: run a controller (the same as ``par controller``)."""

from ..cli import main

if __name__ == "__main__":
    raise SystemExit(main(["controller", *__import__("sys").argv[1:]]))
