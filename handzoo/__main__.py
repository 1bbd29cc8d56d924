"""``python -m handzoo`` is the ``handzoo`` CLI (also for ``torchrun -m handzoo run ...``)."""

from handzoo.cli import main

if __name__ == "__main__":
    main()
