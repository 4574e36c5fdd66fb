"""One adapter per family turns a loaded Hugging Face model and an input into a trace.

Only this package and explorer.models import torch.
"""
