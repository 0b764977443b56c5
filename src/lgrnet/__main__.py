"""``python -m lgrnet ...`` is ``lgrnet ...`` (what ``torchrun -m lgrnet`` runs)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
