"""s2dm_lightning: Sector-Shaped Diffusion Models (S2DM) for flow-guided video generation."""

__version__ = "0.1.0"
