"""The models: encoder/decoder networks, the VAE, the learned codec, its entropy model, the discriminator (notebooks 01-03)."""
