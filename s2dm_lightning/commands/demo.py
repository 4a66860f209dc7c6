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
    max_upload_mb: float = 50.0,
    max_decoded_megapixels: float = 500.0,
    max_queue: int = 8,
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
        max_upload_mb: largest upload accepted, in MB (Gradio refuses bigger files at the upload).
        max_decoded_megapixels: largest uploaded video, frames x height x width in megapixels, checked from its
            header before decoding and while decoding (500: ~8 s of 1080p at 30 fps).
        max_queue: requests that may wait while one generates; more are told the queue is full.
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
    for key, value in (("--max_upload_mb", max_upload_mb), ("--max_decoded_megapixels", max_decoded_megapixels),
                       ("--max_queue", max_queue)):
        if not value > 0:
            raise CommandLineError(f"{key}={value}: must be > 0")

    from s2dm_lightning.demo.app import build_app
    from s2dm_lightning.demo.generate import dataset_clips, load_model
    from s2dm_lightning.demo.limits import DemoLimits

    limits = DemoLimits(max_upload_mb, max_decoded_megapixels, max_queue)

    model = load_model(config if pipeline is None else None, ckpt_path, pipeline, device)
    clips, note = dataset_clips(config)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    app = build_app(model, clips, note, folder, limits)
    print(f"demo: {len(clips)} test clips; videos go to {folder}", flush=True)
    print(exposure_notice(host, share, folder, limits), flush=True)
    app.queue(max_size=max_queue, default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=share, ssr_mode=False, allowed_paths=[str(folder.resolve())],
        footer_links=[], max_file_size=int(max_upload_mb * 1_000_000))


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def exposure_notice(host: str, share: bool, folder: Path, limits) -> str:
    """What the address exposes, printed at start: who can use the model and send files, and the bounds."""
    bounds = (f"uploads {limits.describe()}, kept in {folder / 'uploads'}; {limits.max_queue} requests may wait, "
              "one generates at a time")
    if host in LOCAL_HOSTS and not share:
        return f"demo: serving {host} only (this machine); {bounds}"
    reach = [f"--host {host}: every network interface" if host in ("0.0.0.0", "::") else f"--host {host}"]
    if share:
        reach.append("--share: a public gradio.live link, reachable from the whole internet")
    return (f"demo: WARNING {' and '.join(reach)}. Anyone who can reach it can use the model (this machine's "
            "CPU/GPU time) and upload files: there is no login or password "
            f"(Gradio share {'on' if share else 'off'}); {bounds}. Serve it on a trusted network only.")


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
