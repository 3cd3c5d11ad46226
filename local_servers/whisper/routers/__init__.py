"""HTTP routes of the whisper server."""
