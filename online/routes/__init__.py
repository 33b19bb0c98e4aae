"""One router per resource; `online.main` includes them all."""
