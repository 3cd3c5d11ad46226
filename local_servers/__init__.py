"""OpenAI-compatible servers for the `local` provider: faster-whisper and llama.cpp."""
