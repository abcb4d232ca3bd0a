"""`python -m train teacher-map` (fit and score the teacher's 478 -> 15 map) and
`python -m train pseudolabel SRC_DIR --output DIR` (label every image under SRC_DIR with the teacher)."""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np

from kaggle_framing import COLUMNS, interocular, kaggle_from_ibug68
from kaggle_framing.keypoints68 import DataError, read_keypoints68
from train.data import split_by_group
from train.folders import IMAGE_SUFFIXES, PSEUDO_LABELS, identity_of, read_exclusions
from train.teacher import MAP_FILE, TeacherMap, label, run_teacher

CHUNK = 2000  # images per teacher run: an interrupted labelling keeps every finished chunk


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pred - truth, axis=-1).mean(axis=-1) / interocular(truth)


def teacher_map(args: argparse.Namespace) -> int:
    root = Path(args.ytf68)
    table = read_keypoints68(root)
    truth = kaggle_from_ibug68(table.iloc[:, 2:].to_numpy(np.float32).reshape(-1, 68, 2))
    cache = Path(args.cache) / "ytf68_mesh.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    raw = run_teacher([root / "images" / n for n in table["image"]], cache)
    train_rows, val_rows = split_by_group(table["identity"].astype(str).to_numpy(), args.val_fraction, args.split_seed)
    found = np.isfinite(raw["mesh"]).all(axis=(1, 2))
    fit_rows = train_rows[found[train_rows]]
    mapping = TeacherMap.fit(raw["mesh"][fit_rows], truth[fit_rows], alpha=args.alpha)
    direct = mapping(raw["mesh"][val_rows])
    points, disagreement = label({k: v[val_rows] for k, v in raw.items()}, mapping)
    ok = np.isfinite(points).all(axis=(1, 2))
    scores = {"single": float(np.nanmean(nme(direct, truth[val_rows]))), "mirror-averaged": float(np.mean(nme(points[ok], truth[val_rows][ok])))}
    print(f"fitted on {len(fit_rows)} faces of training identities; {ok.sum()} of {len(val_rows)} held-out faces found")
    for name, value in scores.items():
        print(f"held-out NME, {name}: {value:.4f}")
    kept = ok & (disagreement <= args.max_disagreement)
    print(f"with disagreement <= {args.max_disagreement}: {kept.sum()} faces kept, NME {np.mean(nme(points[kept], truth[val_rows][kept])):.4f}")
    mapping.save(Path(args.output), heldout_nme=scores["mirror-averaged"], heldout_nme_single=scores["single"],
                 fitted_on=len(fit_rows))
    print(f"wrote {args.output}")
    return 0


def images_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def sample(images: list[Path], per_identity: int | None, most: int | None, seed: int, skip: int = 0) -> list[Path]:
    """At most `per_identity` images of each person and `most` in all, drawn at random (fixed by `seed`),
    after passing over the first `skip` of that draw (labelled before, e.g. with --max-images)."""
    rng = np.random.default_rng(seed)
    order = [images[i] for i in rng.permutation(len(images))]
    if per_identity:
        counts: Counter[str] = Counter()
        picked = []
        for path in order:
            who = identity_of(path)
            if counts[who] < per_identity:
                counts[who] += 1
                picked.append(path)
        order = picked
    order = order[skip:]
    return sorted(order[:most] if most else order)


def pseudolabel(args: argparse.Namespace) -> int:
    source, out = Path(args.source), Path(args.output)
    if not source.is_dir():
        raise DataError(f"{source}: not a folder")
    excluded = read_exclusions(args.exclude)
    images = images_under(source)
    kept = [p for p in images if identity_of(p) not in excluded]
    print(f"{len(images)} images under {source}; {len(images) - len(kept)} of excluded people left out")
    kept = sample(kept, args.per_identity, args.max_images, args.seed, args.skip)
    chunks = out / ".teacher"
    chunks.mkdir(parents=True, exist_ok=True)
    raws = []
    for start in range(0, len(kept), CHUNK):
        part = kept[start : start + CHUNK]
        print(f"teacher: images {start + 1}-{start + len(part)} of {len(kept)}", flush=True)
        # Named for the images it holds, so that a run with another draw never reads this chunk back.
        digest = hashlib.sha1("\n".join(map(str, part)).encode()).hexdigest()[:10]
        raws.append(run_teacher(part, chunks / f"{start // CHUNK:05d}-{digest}.npz"))
    points, disagreement = label({k: np.concatenate([r[k] for r in raws]) for k in raws[0]}, TeacherMap.load(Path(args.map)))
    rows, missed, unsure = [], 0, 0
    for path, p, d in zip(kept, points, disagreement):
        if not np.isfinite(d):
            missed += 1
        elif d > args.max_disagreement:
            unsure += 1
        else:
            rows.append([os.path.relpath(path, out), identity_of(path), f"{d:.4f}", *(f"{v:.2f}" for v in p.reshape(-1))])
    tmp = out / (PSEUDO_LABELS + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "identity", "confidence", *COLUMNS])
        writer.writerows(rows)
    tmp.replace(out / PSEUDO_LABELS)
    print(f"wrote {out / PSEUDO_LABELS}: {len(rows)} faces labelled; dropped {missed} where the teacher found no face "
          f"(on the image or its mirror), {unsure} where its two answers disagree by more than {args.max_disagreement} "
          "(mean point distance over the outer-eye-corner distance)")
    return 0


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher-map", help="fit and score the teacher's map from MediaPipe's 478 points to ours")
    p.add_argument("--ytf68", required=True, metavar="DIR")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of identities held out (default 0.15, as fit)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=1e-3, help="ridge penalty (per face)")
    p.add_argument("--max-disagreement", type=float, default=0.05, help="as pseudolabel's; reported only")
    p.add_argument("--cache", default="runs/teacher", help="where the teacher's raw answers are kept")
    p.add_argument("--output", default=str(MAP_FILE))

    p = sub.add_parser("pseudolabel", help="label every image under SRC_DIR with the teacher (a folder fit reads)")
    p.add_argument("source", metavar="SRC_DIR")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--exclude", metavar="TXT", help="names to leave out (one a line), e.g. exclude_identities.txt")
    p.add_argument("--max-disagreement", type=float, default=0.05,
                   help="drop faces whose image and mirror answers differ by more (NME units; default 0.05)")
    p.add_argument("--map", default=str(MAP_FILE), help="the teacher map (python -m train teacher-map)")
    p.add_argument("--per-identity", type=int, metavar="N", help="at most N images of one person (more people per hour)")
    p.add_argument("--max-images", type=int, metavar="N", help="at most N images in all, drawn at random")
    p.add_argument("--seed", type=int, default=0, help="seed of those draws")
    p.add_argument("--skip", type=int, default=0, metavar="N",
                   help="pass over the first N images of the draw (e.g. those an earlier --max-images N labelled)")
