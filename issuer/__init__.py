"""Control plane: follows the log, folds it, submits statements (later issues)."""
