"""OpenAI-compatible chat server for GGUF models (llama.cpp via llama-cpp-python)."""

import os

# llama.cpp's CPU threads (OpenMP) spin while they wait for each other at every step. When another
# process holds a core, the spinning thread burns the time its partner needs: on a shared 2-core
# machine, 2 threads ran 5x slower than with passive waiting. Set before llama_cpp loads libgomp;
# OMP_WAIT_POLICY=ACTIVE in the environment brings spinning back for a machine of its own.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
