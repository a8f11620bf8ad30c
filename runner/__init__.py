"""imgbatch: declarative, reproducible batches for the aireiter gpt_image_2 API."""

__version__ = "0.1.0"
