"""Near duplicates confirmed on pixels, and the same image under two labels.

A perceptual hash (pHash, ``pixels.phash``) is cheap, but at a distance loose enough to catch
crops it also matches look-alikes: different objects of one kind on similar backgrounds. So the
candidates are pairs whose pHashes are close either whole or one image's whole against the other's
centre (a cropped copy is close to its original's centre hash, ``hashes``), and each candidate is
confirmed by comparing the two images themselves: grey thumbnails, one of them cropped by up to
MAX_CROP of each side (searched side by side, to sub-pixel steps) so that a cropped copy lines up
with its original, correlated pixel by pixel (normalised cross-correlation of the high-passed
thumbnails: brightness, contrast and JPEG noise do not move it; a different garment on the same
background does). A re-encoded or half-size copy scores 0.99+, a copy cropped by 3-5% a side
0.97+, look-alikes mostly 0.2-0.6 and at most about 0.88 (bench/duplicates.py), against MIN_SCORE:

    >>> confirmer = Confirmer(lambda path: open(path, "rb").read())
    >>> confirmer.score("cat.jpg", "cat_cropped.jpg")
    0.981
    >>> pairs = confirmed_pairs(rows, confirmer)          # catalog rows: path, split, label, sha256
    >>> conflicts = label_conflicts(rows, pairs)          # same image, two labels

Pure numpy and Pillow, like pixels.py; the bytes are read by the caller's function (through
components.fileio in the pipeline, so any URI works).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from typing import Any, Callable, Iterable

import numpy as np
from PIL import Image, ImageOps

from components.image_example_gen import pixels, spec

# pHash bits between two images, or one and the other's centre: copies and crops of up to 6% a side
# measure 0-8 (a 3-5% crop is 14-20 bits from its original's whole-image hash: bench/duplicates.py).
CANDIDATE_DISTANCE = 12
CENTRE_CROP = 0.04  # Taken off each side for the centre hash.
MIN_SCORE = 0.93  # Confirming correlation: copies and 5% crops score 0.97+, look-alikes up to ~0.88.
MAX_CROP = 0.06  # Crop searched per side, a fraction of the side.
THUMB_SIDE = 128  # Each image squashed to this square, grey, before cropping.
COMPARE_SIDE = 48  # The square the two (cropped) thumbnails are compared at.
_STEPS = (0.02, 0.01, 0.005)  # Pattern search of the four crop fractions.
_STARTS = (0.0, 0.025, 0.05)  # Symmetric crops the search starts from (and the coarse screen tries).
# Coarse score below which a pair is not searched: copies start at 0.76+, look-alikes mostly ~0.2.
PRESCREEN = 0.6
_GIVE_UP = 0.75  # Below this after the 2% steps, the search stops: copies are at 0.9+ by then.
_BLUR = 3  # Radius of the box blur taken away (high pass) before correlating.


@dataclasses.dataclass(frozen=True)
class ConfirmOptions:
    candidate_distance: int = CANDIDATE_DISTANCE
    min_score: float = MIN_SCORE

    def __post_init__(self):
        if isinstance(self.candidate_distance, bool) or not 0 <= self.candidate_distance <= 32:
            raise ValueError(f"candidate_distance: a pHash distance 0-32, got {self.candidate_distance}")
        if not 0 < self.min_score <= 1:
            raise ValueError(f"min_score: in (0, 1], got {self.min_score}")


def thumbnail(data: bytes) -> Image.Image:
    """An encoded image as the grey THUMB_SIDE square (mode "L", 16 kB) that ``score`` compares.

    Exif orientation is applied (as ingestion stores the image); a JPEG is decoded at the smallest
    DCT scale that still covers the thumbnail."""
    image = Image.open(io.BytesIO(data))
    image.draft("L", (THUMB_SIDE * 2, THUMB_SIDE * 2))
    image = ImageOps.exif_transpose(image).convert("L")
    return image.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1) square, edges repeated."""
    size = 2 * radius + 1
    padded = np.pad(values, radius, mode="edge")
    sums = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0))), axis=0), axis=1)
    return (sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]) / size**2


def _normalised(image: Image.Image) -> np.ndarray | None:
    """High-passed (minus a blur), zero-mean, unit-norm pixels; None for a flat image."""
    pixels_ = np.asarray(image, dtype=np.float64)
    values = pixels_ - _box_blur(pixels_, _BLUR)
    values = values - values.mean()
    norm = float(np.sqrt((values * values).sum()))
    return values / norm if norm > 1e-6 else None


def _crop(image: Image.Image, sides: tuple[float, ...]) -> Image.Image:
    image = image if image.mode == "F" else image.convert("F")  # Crops resampled without rounding.
    left, top, right, bottom = sides
    box = (left * THUMB_SIDE, top * THUMB_SIDE, (1 - right) * THUMB_SIDE, (1 - bottom) * THUMB_SIDE)
    return image.resize((COMPARE_SIDE, COMPARE_SIDE), Image.Resampling.BILINEAR, box=box)


def _correlation(larger: Image.Image, target: np.ndarray, sides: tuple[float, ...]) -> float:
    cropped = _normalised(_crop(larger, sides))
    return -1.0 if cropped is None else float((cropped * target).sum())


def _best_crop(larger: Image.Image, smaller: Image.Image, good_enough: float) -> float:
    """The best correlation of ``smaller`` with a crop of ``larger`` (up to MAX_CROP a side)."""
    larger = larger.convert("F")
    target = _normalised(_crop(smaller, (0.0, 0.0, 0.0, 0.0)))
    if target is None:
        return -1.0
    best_sides, best = (0.0,) * 4, -1.0
    for crop in _STARTS:
        score = _correlation(larger, target, (crop,) * 4)
        if score > best:
            best_sides, best = (crop,) * 4, score
    for step in _STEPS:
        if step < _STEPS[0] and best < _GIVE_UP:
            break  # Lined up to 2% and still far: finer steps do not make a look-alike a copy.
        improved = True
        while improved and best < good_enough:
            improved = False
            for side, sign in itertools.product(range(4), (1, -1)):
                moved = list(best_sides)
                moved[side] = min(MAX_CROP, max(0.0, moved[side] + sign * step))
                if tuple(moved) == best_sides:
                    continue
                score = _correlation(larger, target, tuple(moved))
                if score > best + 1e-4:
                    best_sides, best, improved = tuple(moved), score, True
    return best


def score(first: Image.Image, second: Image.Image, good_enough: float = 0.97) -> float:
    """How well two thumbnails (``thumbnail``) line up: the best normalised cross-correlation of one
    with a crop of the other, either way round (-1 to 1). The search stops once ``good_enough``
    is reached."""
    best = _best_crop(first, second, good_enough)
    if best < good_enough:
        best = max(best, _best_crop(second, first, good_enough))
    return best


def _coarse(image: Image.Image) -> np.ndarray:
    """The normalised thumbnail at each of _STARTS (symmetric crops), float16 rows; zeros when flat."""
    image = image.convert("F")
    rows = [_normalised(_crop(image, (crop,) * 4)) for crop in _STARTS]
    size = COMPARE_SIDE * COMPARE_SIDE
    return np.stack([np.zeros(size) if r is None else r.ravel() for r in rows]).astype(np.float16)


def coarse_scores(stacks: np.ndarray, first: np.ndarray, second: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Pairs (indices ``first``, ``second`` into ``stacks``, the images' ``_coarse`` rows) -> each
    pair's best correlation of one image's uncropped thumbnail with the other's symmetric crops,
    either way round: a lower bound of ``score``, computed for many pairs at once to set most
    look-alikes aside cheaply."""
    found = np.empty(len(first), dtype=np.float64)
    for at in range(0, len(first), chunk):
        a = stacks[first[at : at + chunk]].astype(np.float32)
        b = stacks[second[at : at + chunk]].astype(np.float32)
        one = np.einsum("nkp,np->nk", a, b[:, 0])
        other = np.einsum("nkp,np->nk", b, a[:, 0])
        found[at : at + chunk] = np.maximum(one.max(axis=1), other.max(axis=1))
    return found


class Confirmer:
    """Hashes images and scores pairs of them by path (``read`` returns an image's bytes): each
    image is read once for its hashes, and a candidate's once more for the thumbnail it is scored on.

    >>> confirmer = Confirmer(lambda path: fileio_read(root, path), ConfirmOptions())
    >>> confirmer.scores([("a.jpg", "b.jpg"), ("a.jpg", "c.jpg")])
    [0.98, 0.21]
    """

    def __init__(self, read: Callable[[str], bytes], options: ConfirmOptions = ConfirmOptions()):
        self.read = read
        self.options = options
        self._thumbnails: dict[str, Image.Image | None] = {}
        self._coarse: dict[str, np.ndarray] = {}
        self._hashes: dict[str, tuple[int, int] | None] = {}

    def hashes(self, path: str) -> tuple[int, int] | None:
        """The image's whole and centre pHashes (``hashes``); None when unreadable or flat. Only the
        hashes are kept: the candidates' thumbnails are read again (memory stays 16 bytes an image)."""
        if path not in self._hashes:
            try:
                image = self._thumbnails.get(path) or thumbnail(self.read(path))
            except Exception:  # noqa: BLE001 - unreadable now: no candidate.
                image = None
            self._hashes[path] = hashes(image) if image is not None else None
        return self._hashes[path]

    def thumbnail(self, path: str) -> Image.Image | None:
        if path not in self._thumbnails:
            try:
                self._thumbnails[path] = thumbnail(self.read(path))
            except Exception:  # noqa: BLE001 - unreadable now: the pair stays unconfirmed.
                self._thumbnails[path] = None
            if self._thumbnails[path] is not None:
                self._coarse[path] = _coarse(self._thumbnails[path])
        return self._thumbnails[path]

    def scores(self, pairs: list[tuple[str, str]]) -> list[float | None]:
        """Each pair's confirming score (``score``; the coarse one below PRESCREEN, which cannot
        reach ``min_score``); None when either image cannot be read."""
        readable = [i for i, (a, b) in enumerate(pairs) if self.thumbnail(a) and self.thumbnail(b)]
        found: list[float | None] = [None] * len(pairs)
        if not readable:
            return found
        paths = sorted({path for i in readable for path in pairs[i]})
        at = {path: n for n, path in enumerate(paths)}
        coarse = coarse_scores(
            np.stack([self._coarse[path] for path in paths]),
            np.array([at[pairs[i][0]] for i in readable], dtype=np.int64),
            np.array([at[pairs[i][1]] for i in readable], dtype=np.int64),
        )
        good_enough = max(0.97, self.options.min_score)
        for i, value in zip(readable, coarse.tolist()):
            if value >= PRESCREEN and value < good_enough:
                a, b = pairs[i]
                value = max(value, score(self._thumbnails[a], self._thumbnails[b], good_enough))
            found[i] = round(value, 4)
        return found

    def score(self, first: str, second: str) -> float | None:
        """The confirming score of two images; None when either cannot be read."""
        return self.scores([(first, second)])[0]


def hashes(image: Image.Image) -> tuple[int, int] | None:
    """pHashes (as ints) of a thumbnail and of its centre, CENTRE_CROP off each side; None when flat.

    A copy cropped by a few percent a side is many bits from its original's hash (the DCT's lowest
    frequencies span the whole frame) but few from its original's centre hash."""
    values = np.asarray(image, dtype=np.float64)
    cut = round(CENTRE_CROP * values.shape[0])
    whole, centre = pixels.phash(values), pixels.phash(values[cut:-cut, cut:-cut])
    return None if whole is None or centre is None else (int(whole, 16), int(centre, 16))


def hash_candidates(whole: np.ndarray, centre: np.ndarray, max_distance: int) -> dict[tuple[int, int], int]:
    """(i, j) -> distance, i < j, for images whose whole hashes (uint64), or one's whole and the
    other's centre hash, are within ``max_distance`` bits; the smaller distance of the two."""
    n = len(whole)
    first, second, distance = pixels.near_duplicate_pairs(whole, max_distance)
    found = dict(zip(zip(first.tolist(), second.tolist()), distance.tolist()))
    first, second, distance = pixels.near_duplicate_pairs(np.concatenate([whole, centre]), max_distance)
    for a, b, d in zip(first.tolist(), second.tolist(), distance.tolist()):
        if (a < n) != (b < n) and a % n != b % n:  # One image's whole hash, the other's centre.
            key = (min(a % n, b % n), max(a % n, b % n))
            found[key] = min(found.get(key, d), d)
    return found


def candidate_pairs(rows: list[dict[str, Any]], max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) for rows whose catalog pHashes are within ``max_distance`` bits, i < j."""
    hashed = [i for i, r in enumerate(rows) if r.get(spec.PHASH)]
    if len(hashed) < 2:
        return []
    first, second, distance = pixels.near_duplicate_pairs(
        pixels.hash_array(rows[i][spec.PHASH] for i in hashed), max_distance
    )
    return [(hashed[a], hashed[b], d) for a, b, d in zip(first.tolist(), second.tolist(), distance.tolist())]


def confirmed_pairs(
    rows: Iterable[dict[str, Any]], confirmer: Confirmer, fallback_distance: int | None = None
) -> list[dict[str, Any]]:
    """Ingested rows' near-duplicate pairs that matter to the checks, confirmed on pixels: when the
    two have different labels (label_conflict, any splits) or one is in train and the other not
    (near_duplicate_leakage). Two images of one label in one split are not compared.

    Candidates are pairs within ``candidate_distance`` of each other's whole or centre pHash
    (``hash_candidates``, measured on the thumbnails, so every ingested image is read once); each
    is then scored (``Confirmer.scores``). An image that cannot be read has no candidates; with
    ``fallback_distance`` its pairs within that distance of the catalog's pHashes are kept
    unconfirmed (``confirm_score`` None), the plain pHash rule."""
    current = [r for r in rows if r[spec.STATUS] == spec.INGESTED]
    hashed = [(r, confirmer.hashes(r[spec.PATH])) for r in current]
    hashed = [(r, h) for r, h in hashed if h is not None]
    found = []
    if hashed:
        close = hash_candidates(
            np.array([h[0] for _, h in hashed], dtype=np.uint64),
            np.array([h[1] for _, h in hashed], dtype=np.uint64),
            confirmer.options.candidate_distance,
        )
        candidates = [
            (hashed[i][0], hashed[j][0], d)
            for (i, j), d in sorted(close.items())
            if _wanted(hashed[i][0], hashed[j][0])
        ]
        values = confirmer.scores([(a[spec.PATH], b[spec.PATH]) for a, b, _ in candidates])
        for (a, b, distance), value in zip(candidates, values):
            if value is not None and value >= confirmer.options.min_score:
                found.append({"first": a, "second": b, "distance": distance, "confirm_score": value})
    unread = {r[spec.PATH] for r in current if confirmer.hashes(r[spec.PATH]) is None}
    if fallback_distance is not None and unread:
        old = [r for r in current if r.get(spec.PHASH)]
        for i, j, distance in candidate_pairs(old, fallback_distance):
            a, b = old[i], old[j]
            if (a[spec.PATH] in unread or b[spec.PATH] in unread) and _wanted(a, b):
                found.append({"first": a, "second": b, "distance": distance, "confirm_score": None})
    return found


def _wanted(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """A pair the checks need compared: not byte-identical (split_leakage's and the label check's
    own), and of two labels or across the train split's edge."""
    identical = a.get(spec.SHA256) and a[spec.SHA256] == b.get(spec.SHA256)
    return not identical and _matters(a, b)


def _matters(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get(spec.LABEL) != b.get(spec.LABEL) or (a[spec.SPLIT] == "train") != (b[spec.SPLIT] == "train")


def _identical_groups(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows of one content (sha256): the ingested copies and the duplicates dropped at ingestion,
    each duplicate with the split of the copy it duplicates (ingestion drops copies within a split)."""
    ingested = {r[spec.PATH]: r for r in rows if r[spec.STATUS] == spec.INGESTED}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get(spec.SHA256) or r.get(spec.LABEL) is None:
            continue
        if r[spec.STATUS] == spec.INGESTED:
            groups.setdefault(r[spec.SHA256], []).append(r)
        elif r[spec.STATUS] == spec.DUPLICATE:
            kept = ingested.get(r.get(spec.DUPLICATE_OF))
            split = r.get(spec.SPLIT) or (kept[spec.SPLIT] if kept else None)
            groups.setdefault(r[spec.SHA256], []).append({**r, spec.SPLIT: split})
    return [sorted(g, key=lambda r: r[spec.PATH]) for g in groups.values() if len(g) > 1]


def _conflict(a: dict, b: dict, kind: str, distance: int | None, value: float | None) -> dict[str, Any]:
    if (a[spec.SPLIT] == "train") > (b[spec.SPLIT] == "train"):
        a, b = b, a  # The train image is the twin, as in the near-duplicate pairs.
    return {
        "path": a[spec.PATH],
        "split": a[spec.SPLIT],
        "label": a[spec.LABEL],
        "twin": b[spec.PATH],
        "twin_split": b[spec.SPLIT],
        "twin_label": b[spec.LABEL],
        "kind": kind,  # identical (same bytes) | near (a confirmed near duplicate)
        "distance": distance,
        "confirm_score": value,
        # Thumbnails come from the examples, which hold only the kept copy of identical bytes.
        "shown": a.get(spec.DUPLICATE_OF) or a[spec.PATH],
        "twin_shown": b.get(spec.DUPLICATE_OF) or b[spec.PATH],
    }


def label_conflicts(
    rows: Iterable[dict[str, Any]], near: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Pairs of one image under two labels: byte-identical files (kept or dropped as duplicates at
    ingestion) and confirmed near duplicates (``confirmed_pairs``), in one split or across splits.

    For each content, the first path of each label is paired with the first of every other label."""
    rows = list(rows)
    found = []
    for group in _identical_groups(rows):
        first_of: dict[str, dict] = {}
        for r in group:
            first_of.setdefault(r[spec.LABEL], r)
        for x, y in itertools.combinations(sorted(first_of.values(), key=lambda r: r[spec.PATH]), 2):
            found.append(_conflict(x, y, "identical", 0, 1.0))
    for pair in near:
        a, b = pair["first"], pair["second"]
        if pair["confirm_score"] is None:
            continue  # An unreadable image's pHash-only pair: not confirmed, not an error.
        if a.get(spec.LABEL) is not None and b.get(spec.LABEL) is not None and a[spec.LABEL] != b[spec.LABEL]:
            found.append(_conflict(a, b, "near", pair["distance"], pair["confirm_score"]))
    return sorted(found, key=lambda c: (c["kind"] != "identical", str(c["split"]), c["path"], c["twin"]))
