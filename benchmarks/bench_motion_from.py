"""Peak memory and time of ``sample --motion_from`` reading a long video: before (#29) vs now, in one run.

Each path runs in its own child process (``python -c``) that reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: numpy and OpenCV buffers included, which tracemalloc
does not see) and the wall time of the call; the baseline is ``benchmarks/motion_from_before.py``.
One thread everywhere (OMP_NUM_THREADS=1, cv2.setNumThreads(1), torch.set_num_threads(1)).

    python benchmarks/bench_motion_from.py /usr/share/doc/opencv-doc/examples/data/vtest.avi

(``apt-get install opencv-doc``: OpenCV's 795-frame 768 x 576 street scene.) Without a path it writes a
600-frame 640 x 480 MJPG clip to a temporary folder and uses that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import cv2, torch
cv2.setNumThreads(1); torch.set_num_threads(1)
sys.path.insert(0, {repo!r})
path, flow_size, num_frames = {path!r}, {flow_size}, {num_frames}
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if {new}:
    from s2dm_lightning.pipelines.motion import flows_from_video
    call = lambda: flows_from_video(path, flow_size, num_frames, frame_size=flow_size)
else:
    from benchmarks.motion_from_before import flows_from_video_before
    call = lambda: flows_from_video_before(path, flow_size, num_frames)
start = time.perf_counter()
flows, frames = call()
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_call_mib": start_rss / 1024, "flows": list(flows.shape)}}))
"""


def measure(path: str, new: bool, flow_size: int = 32, num_frames: int = 16) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = CHILD.format(repo=str(REPO), path=path, flow_size=flow_size, num_frames=num_frames, new=new)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def synthetic_clip(folder: Path) -> str:
    import cv2
    import numpy as np

    path = folder / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    noise = np.random.default_rng(0).integers(0, 256, (480, 1240, 3), dtype=np.uint8)
    for i in range(600):
        writer.write(np.ascontiguousarray(noise[:, i:i + 640]))
    writer.release()
    return str(path)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = sys.argv[1] if len(sys.argv) > 1 else synthetic_clip(Path(folder))
        before, now = measure(path, new=False), measure(path, new=True)
    print(f"video: {path}; 16 frames, 32 x 32 flows; 1 thread")
    print("| path | time (s) | peak RSS (MiB) |\n|---|---|---|")
    for name, row in (("before (#29): every frame, full size", before), ("now: the 16 clip frames", now)):
        print(f"| {name} | {row['seconds']:.2f} | {row['peak_mib']:.0f} |")
    print(f"ratio before/now: time {before['seconds'] / now['seconds']:.1f}x, "
          f"peak memory {before['peak_mib'] / now['peak_mib']:.1f}x (imports alone: {now['before_call_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
