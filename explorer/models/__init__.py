"""Model loading: the embedded defaults, Hugging Face ids, and clear load errors (torch)."""
