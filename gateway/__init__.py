"""modelgate's gateway: an ASGI app around LiteLLM's Router, configured by config/models.yaml."""

import os

# Before litellm is imported anywhere: no hub downloads, no remote price map (both stall offline).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
