"""``python -m s2dm_lightning demo``: the Gradio page (docs/demo.md), served on 127.0.0.1 unless asked otherwise."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from s2dm_lightning.commands.errors import CommandLineError


def demo(
    config: str | None = None,
    ckpt_path: str | None = None,
    pipeline: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    output_dir: str = "outputs/demo",
    device: str = "cpu",
) -> None:
    """Serve the demo page: a test clip, an uploaded video or a formula drives a video of your caption.

    Args:
        config: experiment YAML whose model section builds the S2DM (e.g. configs/synthetic.yaml or a run's
            config.yaml); its data section lists the test clips.
        ckpt_path: the S2DM Lightning checkpoint (e.g. logs/synthetic/version_0/checkpoints/last.ckpt).
        pipeline: a folder written by `export`, instead of --config + --ckpt_path (--config then only lists clips).
        host: address to listen on; 127.0.0.1 serves this machine only (0.0.0.0: every network interface).
        port: port to listen on (default: Gradio's, 7860, or the next free one).
        share: also open a public Gradio share link (it needs the internet).
        output_dir: folder for the generated videos and kept uploads.
        device: where the model runs (cpu, cuda, ...).
    """
    if importlib.util.find_spec("gradio") is None:
        raise CommandLineError('demo needs Gradio, an optional extra: pip install -e ".[demo]"')
    if pipeline is None and (config is None or ckpt_path is None):
        raise CommandLineError("demo needs --config CONFIG --ckpt_path CKPT, or --pipeline FOLDER")
    for key, value in (("--config", config), ("--ckpt_path", ckpt_path)):
        if value is not None and not Path(value).is_file():
            raise CommandLineError(f"{key}={value} does not exist")
    if pipeline is not None and not Path(pipeline).is_dir():
        raise CommandLineError(f"--pipeline={pipeline} is not a folder")

    from s2dm_lightning.demo.app import build_app
    from s2dm_lightning.demo.generate import dataset_clips, load_model

    model = load_model(config if pipeline is None else None, ckpt_path, pipeline, device)
    clips, note = dataset_clips(config)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    app = build_app(model, clips, note, folder)
    print(f"demo: {len(clips)} test clips; videos go to {folder}", flush=True)
    app.queue().launch(server_name=host, server_port=port, share=share, ssr_mode=False,
                       allowed_paths=[str(folder.resolve())], footer_links=[])


def main(argv: list[str]) -> None:
    """Parse ``demo``'s arguments (--help lists them with the docstring above) and serve.

    jsonargparse's CLI() would take --config for a file of arguments; here --config is the experiment YAML.
    """
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="python -m s2dm_lightning demo", description=demo.__doc__.split("\n")[0])
    parser.add_function_arguments(demo, as_positional=False)
    arguments = parser.parse_args(list(argv))
    demo(**arguments.as_dict())

if __name__ == "__main__":
    main(sys.argv[1:])
