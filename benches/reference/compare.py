#!/usr/bin/env python3
"""Side-by-side throughput: cliptag against the Python reference pipeline (PIL + transformers'
CLIPImageProcessor + CLIPModel in PyTorch), ONNX Runtime, OpenVINO (its default precision, f32 and
bf16), and the fastest pipelines a capable Python user writes (PIL's reduced-size JPEG decoding,
or pillow-heif's HEIC decoding, in a process pool, overlapped with ONNX Runtime or OpenVINO at
batch 32), on the same machine, in one run.

Every engine runs a randomly initialised ViT-B/32 (a model's speed does not depend on its weight
values). Measurements are interleaved in rounds, because a shared machine's speed drifts; the
medians are reported, with cliptag's ratio to each. Beside them: the time PIL takes to decode one
photo at reduced size (`Image.draft`, libjpeg-turbo's DCT scaling, at the scale cliptag decodes),
against `cliptag bench --part index`'s reduced-size decode, both on one thread.

Run by hand, never by CI:

    python3 -m pip install torch transformers onnxruntime onnx pillow openvino pillow-heif
    cargo build --release
    python3 benches/reference/compare.py --cliptag target/release/cliptag

The JPEG folder is made by `cliptag bench --part index --dir DIR` (4000x3000 photos) if empty;
the HEIC folder beside it (`DIR-heic`, iPhone-style 12 MP HEICs) by the same command's first run.
cliptag's end to end runs in its default precision (the fastest this CPU runs) and in the other of
f32 and bf16 where bf16 runs, through `CLIPTAG_PRECISION`.
"""

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cliptag", default="target/release/cliptag", help="the cliptag binary")
    p.add_argument("--dir", default=None, help="folder of JPEGs (made if missing or empty)")
    p.add_argument("--photos", type=int, default=32, help="photos to generate")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every engine")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per encoder measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--cliptag-kernel", choices=["avx512", "avx2", "gemm"],
                   help="run cliptag with CLIPTAG_KERNEL set to this (e.g. avx2: the kernel an AVX2-only"
                        " CPU gets); the Python engines still use every extension the CPU has")
    return p.parse_args()


def timed(seconds, per_step, step):
    step()  # warm-up
    start = time.perf_counter()
    items = 0
    while time.perf_counter() - start < seconds or items == 0:
        step()
        items += per_step
    return items / (time.perf_counter() - start)


SIZE = 224
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def clip_pixels(image):
    """CLIP's preprocessing in PIL and numpy: bicubic shortest side to 224, centre crop, normalise."""
    import numpy as np
    from PIL import Image
    w, h = image.size
    scale = SIZE / min(w, h)
    image = image.resize((max(SIZE, round(w * scale)), max(SIZE, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    image = image.crop((left, top, left + SIZE, top + SIZE))
    pixels = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
    return pixels.transpose(2, 0, 1).astype(np.float32)


def draft_load(path):
    """Decode at reduced size, as `Image.draft` does with libjpeg-turbo's DCT scaling, then CLIP's
    preprocessing."""
    from PIL import Image, ImageOps
    image = Image.open(path)
    image.draft("RGB", (2 * SIZE, 2 * SIZE))
    return clip_pixels(ImageOps.exif_transpose(image).convert("RGB"))


def heic_load(path):
    """A HEIC decoded by pillow-heif (libheif + libde265) at full size, then CLIP's preprocessing
    (HEIC has no reduced-size decoding)."""
    import pillow_heif
    from PIL import Image, ImageOps
    pillow_heif.register_heif_opener()
    return clip_pixels(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
                    return " ".join(flag for flag in line.split(":")[1].split() if flag in wanted)
    except OSError:
        pass
    return "unknown"


def main():
    args = parse_args()
    # Started before torch and ONNX Runtime start their threads; the workers import only PIL and numpy.
    pool = multiprocessing.get_context("spawn").Pool(args.threads)
    import numpy as np
    import torch
    from PIL import Image, ImageOps
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cliptag-photos-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.glob("*.jpg")):
        print(f"generating {args.photos} photos in {folder} …", flush=True)
        subprocess.run([args.cliptag, "bench", "--part", "photos", "--dir", str(folder),
                        "--photos", str(args.photos)], check=True)
    photos = sorted(folder.glob("*.jpg"))
    print(f"{len(photos)} photos in {folder}; {args.threads} threads", flush=True)

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()  # ViT-B/32 shapes, random weights
    processor = CLIPImageProcessor()  # OpenAI's preprocessing: bicubic 224, centre crop, normalise

    def torch_encode(pixels):
        with torch.inference_mode():
            return model.get_image_features(pixel_values=pixels)

    onnx_path = Path(tempfile.mkdtemp()) / "vision.onnx"

    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m.get_image_features(pixel_values=pixel_values)

    torch.onnx.export(Vision(model), (torch.randn(1, 3, 224, 224),), str(onnx_path),
                      input_names=["pixel_values"], output_names=["image_embeds"],
                      dynamic_axes={"pixel_values": {0: "batch"}}, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def ort_encode(pixels):
        return session.run(None, {"pixel_values": pixels.numpy()})[0]

    # OpenVINO, as Immich's OpenVINO execution provider and a Python user run it: its default
    # (bf16 on CPUs with AVX-512 BF16 or AMX), and f32 and bf16 asked for.
    import openvino as ov
    core = ov.Core()
    openvino = {}
    for name, hint in (("OV default", None), ("OV f32", "f32"), ("OV bf16", "bf16")):
        config = {"INFERENCE_NUM_THREADS": args.threads}
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        compiled = core.compile_model(str(onnx_path), "CPU", config)
        openvino[name] = compiled.create_infer_request()
        if hint is None:
            chosen = compiled.get_property("INFERENCE_PRECISION_HINT")
            ov_default = chosen.get_type_name() if hasattr(chosen, "get_type_name") else str(chosen)

    def ov_run(name, pixels):
        return openvino[name].infer({0: pixels})

    def load(path):
        image = Image.open(path)
        image = ImageOps.exif_transpose(image).convert("RGB")
        return processor(images=image, return_tensors="pt")["pixel_values"][0]

    def end_to_end(encode, batch=32):
        """The usual Python script: decode and preprocess each photo, encode in batches."""
        start = time.perf_counter()
        pending = []
        for path in photos:
            pending.append(load(path))
            if len(pending) == batch:
                encode(torch.stack(pending))
                pending = []
        if pending:
            encode(torch.stack(pending))
        return len(photos) / (time.perf_counter() - start)

    def best_python(run=None, loader=draft_load, files=None, batch=32):
        """PIL's draft decoding (or `loader`) in a pool of worker processes, one per core, feeding
        ONNX Runtime (or `run`) in the main process; the pool decodes the next photos while the
        engine encodes."""
        run = run or (lambda pixels: session.run(None, {"pixel_values": pixels}))
        files = files if files is not None else photos
        start = time.perf_counter()
        pending = []
        for pixels in pool.imap(loader, [str(p) for p in files], chunksize=1):
            pending.append(pixels)
            if len(pending) == batch:
                run(np.stack(pending))
                pending = []
        if pending:
            run(np.stack(pending))
        return len(files) / (time.perf_counter() - start)

    def pil_draft_ms():
        """One thread: PIL's reduced-size decode of each photo, in milliseconds (median)."""
        times = []
        for path in photos[:8]:
            start = time.perf_counter()
            image = Image.open(path)
            image.draft("RGB", (2 * SIZE, 2 * SIZE))
            image.convert("RGB").load()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    def cliptag(*extra, precision=None):
        env = dict(os.environ)
        env.pop("CLIPTAG_PRECISION", None)
        if precision:
            env["CLIPTAG_PRECISION"] = precision
        if args.cliptag_kernel:
            env["CLIPTAG_KERNEL"] = args.cliptag_kernel
        out = subprocess.run([args.cliptag, "--threads", str(args.threads), "bench", "--json", *extra],
                             check=True, capture_output=True, text=True, env=env).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    results = {}
    precisions = {"f32"}
    default_precision = None
    heic_folder = Path(str(folder) + "-heic")
    f32_kernel = "unknown"
    kernels = {"bf16": "AVX-512 BF16", "f16": "AVX-512 FP16"}

    def note(key, value):
        results.setdefault(key, []).append(value)

    for round_ in range(args.rounds):
        print(f"round {round_ + 1}/{args.rounds}", flush=True)
        for b in batches:
            pixels = torch.randn(b, 3, 224, 224)
            note(("pytorch", b), timed(args.seconds, b, lambda: torch_encode(pixels)))
            note(("onnxruntime", b), timed(args.seconds, b, lambda: ort_encode(pixels)))
            for name in openvino:
                array = pixels.numpy()
                note((name, b), timed(args.seconds, b, lambda: ov_run(name, array)))
        for row in cliptag("--part", "model", "--batches", args.batches, "--seconds", str(args.seconds), "--no-text"):
            if row.get("what") == "matrix_kernel":
                f32_kernel = row.get("kernel") or "the gemm crate"
            if row.get("what") == "image_encoder":
                note(("cliptag", row["batch"]), row["images_per_s"])
            if row.get("what") == "reduced_precision" and row.get("kernel"):
                kernels[row["precision"]] = row["kernel"]
            for name in ("bf16", "f16"):
                if row.get("what") == f"image_encoder_{name}":
                    note((f"cliptag {name}", row["batch"]), row["images_per_s"])
                    precisions.add(name)
        # cliptag's end to end first: its first run makes the HEIC folder the Python pipeline reads.
        for precision in (None, "f32", "bf16"):
            if precision is not None and (precision == default_precision or precision not in precisions):
                continue
            for row in cliptag("--part", "index", "--dir", str(folder), precision=precision):
                fmt = row.get("format")
                if row.get("what") == "index":
                    name = row.get("precision", "f32")
                    if precision is None:
                        default_precision = name
                        note(("cliptag default", fmt), row["images_per_s"])
                    note((f"cliptag {name}", fmt), row["images_per_s"])
                if precision is not None:
                    continue
                if row.get("what") == "index_peak_rss":
                    note(("cliptag", f"peak_rss {fmt}"), row["mib"])
                if row.get("what") == "index_schedule" and fmt == "JPEG":
                    note(("cliptag", "schedule"), row["share_of_allowed"])
                if row.get("what") == "decode" and fmt == "JPEG" and row.get("mode") == "reduced-size decode":
                    note(("cliptag", "draft_ms"), row["decode_ms"])
        note(("pytorch", "e2e"), end_to_end(torch_encode))
        note(("onnxruntime", "e2e"), end_to_end(ort_encode))
        note(("best", "JPEG"), best_python())
        for name in openvino:
            note((f"best {name}", "JPEG"), best_python(lambda pixels, name=name: ov_run(name, pixels)))
        heics = sorted(heic_folder.glob("*.HEIC"))
        if heics:
            note(("best", "HEIC"), best_python(loader=heic_load, files=heics))
            for name in openvino:
                note((f"best {name}", "HEIC"),
                     best_python(lambda pixels, name=name: ov_run(name, pixels), loader=heic_load, files=heics))
        note(("pil", "draft_ms"), pil_draft_ms())

    pool.close()
    med = {k: statistics.median(v) for k, v in results.items()}
    print()
    print(f"CPU flags: {cpu_flags()}")
    print(f"cliptag's f32 linear layers ran on: {f32_kernel}"
          + (f" (CLIPTAG_KERNEL={args.cliptag_kernel})" if args.cliptag_kernel else ""))
    print(f"OpenVINO's default precision here: {ov_default}; cliptag's: {default_precision}")
    print()
    print("image encoder alone, images/s (medians of", args.rounds, "interleaved rounds):")
    engines = [("PyTorch", "pytorch"), ("ONNX RT", "onnxruntime"), ("OV f32", "OV f32"),
               ("OV bf16", "OV bf16"), ("OV dflt", "OV default"), ("cliptag f32", "cliptag")]
    engines += [(f"cliptag {p}", f"cliptag {p}") for p in ("bf16", "f16") if (f"cliptag {p}", batches[0]) in med]
    print(f"{'':10}" + "".join(f"{title:>13}" for title, _ in engines))
    for b in batches:
        print(f"batch {b:<4}" + "".join(f"{med[(key, b)]:13.2f}" for _, key in engines))
    print("cliptag against OpenVINO in the same precision:")
    for b in batches:
        line = f"  batch {b:<3} f32 {med[('cliptag', b)] / med[('OV f32', b)]:.2f}x"
        if ("cliptag bf16", b) in med:
            line += f", bf16 {med[('cliptag bf16', b)] / med[('OV bf16', b)]:.2f}x"
        print(line)
    for name, extension in kernels.items():
        if (f"cliptag {name}", batches[0]) not in med:
            why = (f"CLIPTAG_KERNEL={args.cliptag_kernel} leaves it off" if args.cliptag_kernel not in (None, "avx512")
                   else f"not on this CPU (no {extension})")
            print(f"cliptag {name}: {why}")
        else:
            print(f"cliptag {name} ran on {extension}")

    print()
    print("end to end, photos/s (decode, preprocess, encode; batch 32):")
    print(f"  JPEG: PyTorch {med[('pytorch', 'e2e')]:.2f}, ONNX RT {med[('onnxruntime', 'e2e')]:.2f}"
          " (PIL and CLIPImageProcessor, one photo at a time)")
    pythons = [("best Py + ONNX RT", "best")] + [(f"best Py + {n}", f"best {n}") for n in openvino]
    for fmt in ("JPEG", "HEIC"):
        rows = [(title, med[(key, fmt)]) for title, key in pythons if (key, fmt) in med]
        ours = [(f"cliptag {p}", med[(f"cliptag {p}", fmt)]) for p in ("f32", "bf16") if (f"cliptag {p}", fmt) in med]
        if not rows or not ours:
            continue
        print(f"  {fmt}: " + "; ".join(f"{t} {v:.2f}" for t, v in rows + ours))
        best_title, best = max(rows, key=lambda r: r[1])
        default = med[("cliptag default", fmt)]
        print(f"    cliptag default ({default_precision}) / the best Python pipeline ({best_title}): {default / best:.2f}x")
        if fmt == "JPEG":
            ov = med[("best OV default", fmt)]
            print(f"    cliptag default / OpenVINO's default pipeline ({ov_default}): {default / ov:.2f}x")
            if ("cliptag f32", fmt) in med:
                print(f"    cliptag f32 / OpenVINO f32 pipeline: {med[('cliptag f32', fmt)] / med[('best OV f32', fmt)]:.2f}x")
            if ("cliptag bf16", fmt) in med:
                print(f"    cliptag bf16 / OpenVINO bf16 pipeline: {med[('cliptag bf16', fmt)] / med[('best OV bf16', fmt)]:.2f}x")
    print(f"  (best Py = PIL draft decoding, or pillow-heif for HEIC, in {args.threads} processes overlapped"
          " with the engine at batch 32)")
    if ("cliptag", "schedule") in med:
        print(f"cliptag indexing reached {100 * med[('cliptag', 'schedule')]:.0f} % of the photos/s its decode and"
              " encode CPU time per photo allow on these cores")
    for fmt in ("JPEG", "HEIC", "RAW"):
        if ("cliptag", f"peak_rss {fmt}") in med:
            print(f"cliptag peak RSS while indexing the {fmt}s: {med[('cliptag', f'peak_rss {fmt}')]:.0f} MiB"
                  " (the whole process: the model, its random weights and the vocabulary included)")
    pil, ours = med[("pil", "draft_ms")], med[("cliptag", "draft_ms")]
    print(f"reduced-size JPEG decode, one thread, ms per photo: PIL draft {pil:.1f}, cliptag {ours:.1f}"
          f" (cliptag / PIL {ours / pil:.2f})")


if __name__ == "__main__":
    sys.exit(main())
