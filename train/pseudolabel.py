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

import cv2

from kaggle_framing import COLUMNS, KEYPOINT_NAMES, apply_affine, interocular, kaggle_from_ibug68
from kaggle_framing.keypoints68 import DataError, points68, read_keypoints68
from train.conventions import convention_offsets, save_offsets
from train.data import split_by_group
from train.folders import IMAGE_SUFFIXES, PSEUDO_LABELS, identity_of, pts_items, read_exclusions
from train.teacher import TeacherMap, label, run_teacher

CHUNK = 2000  # images per teacher run: an interrupted labelling keeps every finished chunk


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pred - truth, axis=-1).mean(axis=-1) / interocular(truth)


def teacher_map(args: argparse.Namespace) -> int:
    """Fit the map on human-labelled faces (`--pts`, cropped one face each) or, without them, on
    ytf68's training identities; score it on held-out people. With both, also measure where ytf68's
    labels sit against the human-fitted map: the per-point offsets `fit --ytf68-offsets` takes out."""
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    ytf = _ytf68_teacher_faces(Path(args.ytf68), cache) if args.ytf68 else None
    if args.pts:
        human = _human_teacher_faces(args.pts, cache)
        fit_on, scored_on = human, "human-labelled faces (" + ", ".join(args.pts) + ")"
    elif ytf is not None:
        fit_on, scored_on = ytf, f"ytf68 ({args.ytf68})"
    else:
        raise DataError("give --pts DIR (human labels) and/or --ytf68 DIR")
    raw, truth, groups = fit_on
    train_rows, val_rows = split_by_group(groups, args.val_fraction, args.split_seed)
    found = np.isfinite(raw["mesh"]).all(axis=(1, 2))
    fit_rows = train_rows[found[train_rows]]
    mapping = TeacherMap.fit(raw["mesh"][fit_rows], truth[fit_rows], alpha=args.alpha)
    direct = mapping(raw["mesh"][val_rows])
    points, disagreement = label({k: v[val_rows] for k, v in raw.items()}, mapping)
    ok = np.isfinite(points).all(axis=(1, 2))
    scores = {"single": float(np.nanmean(nme(direct, truth[val_rows]))), "mirror-averaged": float(np.mean(nme(points[ok], truth[val_rows][ok])))}
    print(f"{scored_on}: fitted on {len(fit_rows)} faces of training identities; {ok.sum()} of {len(val_rows)} held-out faces found")
    for name, value in scores.items():
        print(f"held-out NME, {name}: {value:.4f}")
    kept = ok & (disagreement <= args.max_disagreement)
    print(f"with disagreement <= {args.max_disagreement}: {kept.sum()} faces kept, NME {np.mean(nme(points[kept], truth[val_rows][kept])):.4f}")
    mapping.save(Path(args.output), heldout_nme=scores["mirror-averaged"], heldout_nme_single=scores["single"],
                 fitted_on=len(fit_rows))
    print(f"wrote {args.output}")
    if args.pts and ytf is not None:
        raw, truth, groups = ytf
        rows, _ = split_by_group(groups, args.val_fraction, args.split_seed)  # ytf68's training people only
        offsets = convention_offsets(truth[rows], label({k: v[rows] for k, v in raw.items()}, mapping)[0])
        save_offsets(Path(args.offsets), offsets, f"median of ytf68 labels minus the teacher map fitted on {scored_on}, "
                     f"over {len(rows)} faces of ytf68's training identities")
        print("ytf68 labels minus human convention (crop px of the Kaggle framing): " + ", ".join(
            f"{n} {x:+.2f},{y:+.2f}" for n, (x, y) in zip(KEYPOINT_NAMES, offsets)))
        print(f"wrote {args.offsets}")
    return 0


def _ytf68_teacher_faces(root: Path, cache: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The teacher's answers on ytf68's images, their labels (0-based) and identities."""
    table = read_keypoints68(root)
    raw = run_teacher([root / "images" / n for n in table["image"]], cache / "ytf68_mesh.npz")
    return raw, kaggle_from_ibug68(points68(table)), table["identity"].astype(str).to_numpy()


def _human_teacher_faces(roots: list[str], cache: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The teacher's answers on 300-W style faces, each cut out of its photo (the teacher answers for
    one face an image, and photos hold several), their labels in the cut-outs and identities."""
    items = [item for root in roots for item in pts_items(root)]
    key = hashlib.sha1("|".join(f"{Path(p).resolve()}" for p, _, _ in items).encode()).hexdigest()[:10]
    folder = cache / f"human-{key}"
    folder.mkdir(exist_ok=True)
    crops, truth = [], []
    for i, (image, points, _) in enumerate(items):
        matrix = face_cutout(points)
        crop = folder / f"{i:05d}.png"
        if not crop.exists():
            cv2.imwrite(str(crop), cv2.warpAffine(cv2.imread(str(image)), matrix, (CUTOUT, CUTOUT), flags=cv2.INTER_AREA,
                                                  borderMode=cv2.BORDER_REPLICATE))
        crops.append(crop)
        truth.append(apply_affine(matrix, points))
    raw = run_teacher(crops, cache / f"human-{key}_mesh.npz")
    return raw, np.stack(truth).astype(np.float32), np.array([who for _, _, who in items])


CUTOUT = 384  # side of a face's cut-out for the teacher (px): the face's 15 points span about a third


def face_cutout(points: np.ndarray) -> np.ndarray:
    """2x3 scale-and-shift from a photo to a CUTOUT-pixel square centred on the face of these 15 points."""
    low, high = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
    scale = CUTOUT / (3 * float(max(high - low)))
    centre = (low + high) / 2
    return np.array([[scale, 0, (CUTOUT - 1) / 2 - scale * centre[0]], [0, scale, (CUTOUT - 1) / 2 - scale * centre[1]]], np.float32)


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
