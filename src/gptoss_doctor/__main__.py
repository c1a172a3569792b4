"""``python -m gptoss_doctor`` runs the CLI."""

from __future__ import annotations

from gptoss_doctor.cli import main

if __name__ == "__main__":
    main()
