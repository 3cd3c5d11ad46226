"""OpenAI-compatible speech-to-text server backed by faster-whisper.

Run it with `python -m local_servers.whisper`; see docs/local_servers.md.
"""
