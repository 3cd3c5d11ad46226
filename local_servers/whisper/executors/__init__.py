"""Speech-to-text engines: the code that owns a model and runs it."""
