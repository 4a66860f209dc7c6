"""The web demo (``python -m s2dm_lightning demo``): Gradio, an optional extra (``pip install -e ".[demo]"``).

:mod:`s2dm_lightning.demo.generate` holds what the page calls and needs no Gradio;
:mod:`s2dm_lightning.demo.app` builds the page and is the only module that imports Gradio.
"""
