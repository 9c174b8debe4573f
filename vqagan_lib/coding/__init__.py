"""From symbols to bytes and back: the arithmetic coder, the .vqg container, image file I/O (notebook 02)."""
