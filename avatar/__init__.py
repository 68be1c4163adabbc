"""The avatar generators (CPU engine, diffusion engine) and their streaming runtime."""
