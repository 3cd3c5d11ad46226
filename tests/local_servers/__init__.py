"""Tests of the local OpenAI-compatible servers (faster-whisper, llama.cpp), run as real processes."""
