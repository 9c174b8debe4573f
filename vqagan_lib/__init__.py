"""vqagan_lib: the small library that the vqagan notebooks grow.

Extreme lossy image compression with a VQA-guided VAE-GAN. Each module holds one
concept and notes the notebook that introduces it.
"""
__version__ = "0.1.0"
