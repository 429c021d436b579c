"""Scripts run from the project root: `bin/prod.py` (make prod) and the supervisor it shares with the demo."""
