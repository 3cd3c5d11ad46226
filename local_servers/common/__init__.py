"""Pieces both local servers share: OpenAI-shaped errors and bounded admission."""
