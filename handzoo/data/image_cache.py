"""Pre-decoded images at the training resolution, as uint8 memory maps.

Decoding JPEGs is most of the cost of an epoch; this cache decodes every image
(and mask) of a split once, resized to ``size``×``size`` with area
averaging, into ``$HANDZOO_HOME/cache/freihand/images/<key>/``:

    images.u8   (num_images, size, size, 3) uint8 RGB
    masks.u8    (num_masks, size, size) uint8 in {0,1} (absent without masks)
    meta.json   shapes, source image sizes and the images/masks that could not be read

It is built in a temporary folder with a progress bar and renamed into place,
so an interrupted build leaves nothing that looks finished. The key hashes the
root, split, image count, size, and the size and mtime of the first and last
files, so replacing the dataset builds a new cache. 128 px costs 48 KiB per
image (6.4 GB for FreiHAND's 130,240 training images).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from handzoo.data import freihand_layout as layout
from handzoo.data.annotations import cache_dir
from handzoo.data.image_io import BadImageError, binarize_mask, read_jpeg, resize_image

CACHE_FORMAT = "rgb2"
"""Part of every cache key: bump when the decoded pixels change (``rgb2``: images
decoded with libjpeg reduction were BGR before), so stale caches are rebuilt."""


def _stat_key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


class ImageCache:
    """Read access to a built cache; open with :meth:`ensure`.

    The memory maps are opened lazily in each process (DataLoader workers
    share the page cache instead of receiving copies).
    """

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder = folder
        self.meta = meta
        self.size = int(meta["size"])
        self.bad = set(meta["bad"])
        self.bad_masks = set(meta.get("bad_masks", []))
        self.source_sizes = np.asarray(meta["source_sizes"], dtype=np.int64)  # (num_images, 2) W,H
        self._images: np.memmap | None = None
        self._masks: np.memmap | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_masks"] = None
        return state

    @property
    def has_masks(self) -> bool:
        return int(self.meta["num_masks"]) > 0

    def image(self, index: int) -> np.ndarray:
        """(size,size,3) uint8 view of image ``index`` (copy it before modifying)."""
        if self._images is None:
            shape = (int(self.meta["num_images"]), self.size, self.size, 3)
            self._images = np.memmap(self.folder / "images.u8", np.uint8, "r", shape=shape)
        return self._images[index]

    def mask(self, index: int) -> np.ndarray:
        """(size,size) {0,1} uint8 view of mask ``index``."""
        if self._masks is None:
            shape = (int(self.meta["num_masks"]), self.size, self.size)
            self._masks = np.memmap(self.folder / "masks.u8", np.uint8, "r", shape=shape)
        return self._masks[index]

    @classmethod
    def ensure(
        cls,
        root: Path,
        split_dir: str,
        num_images: int,
        num_masks: int,
        size: int,
        on_bad_image: str = "raise",
        workers: int | None = None,
    ) -> ImageCache:
        """Open the cache for these images, building it first if needed.

        Args:
            root: the FreiHAND root; ``split_dir``: 'training' or 'evaluation'.
            num_images: images ``0..num_images-1`` of ``<split_dir>/rgb``.
            num_masks: masks ``0..num_masks-1`` (0: none).
            size: the side in pixels.
            on_bad_image: 'raise' stops at the first unreadable file; 'skip'
                records it in ``meta['bad']`` (the dataset substitutes it).
            workers: decoding threads (default: CPU count).
        """
        root = Path(root).resolve()
        last = max(num_images - 1, 0)
        ident = ":".join(
            [
                CACHE_FORMAT,
                str(root),
                split_dir,
                str(num_images),
                str(num_masks),
                str(size),
                _stat_key(layout.rgb_path(root, split_dir, 0)),
                _stat_key(layout.rgb_path(root, split_dir, last)),
                _stat_key(layout.mask_path(root, split_dir, max(num_masks - 1, 0))),
            ]
        )
        key = hashlib.sha1(ident.encode()).hexdigest()[:16]
        folder = cache_dir() / "images" / f"{split_dir}-{size}px-{key}"
        meta_path = folder / "meta.json"
        if meta_path.exists():
            return cls(folder, json.loads(meta_path.read_text()))
        meta = _build(root, split_dir, num_images, num_masks, size, folder, on_bad_image, workers)
        return cls(folder, meta)


def _build(
    root: Path,
    split_dir: str,
    num_images: int,
    num_masks: int,
    size: int,
    folder: Path,
    on_bad_image: str,
    workers: int | None,
) -> dict:
    from rich.console import Console
    from rich.progress import track

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    images = np.memmap(tmp / "images.u8", np.uint8, "w+", shape=(max(num_images, 1), size, size, 3))
    masks = np.memmap(tmp / "masks.u8", np.uint8, "w+", shape=(num_masks, size, size)) if num_masks else None
    sources = np.zeros((num_images, 2), np.int64)
    bad: list[int] = []
    bad_masks: list[int] = []
    errors: list[str] = []

    def decode(i: int) -> None:
        try:
            image, factor = read_jpeg(layout.rgb_path(root, split_dir, i), target=size)
            sources[i] = (round(image.shape[1] / factor), round(image.shape[0] / factor))
            images[i] = resize_image(image, (size, size))
        except BadImageError as exc:
            if on_bad_image == "raise":
                raise
            bad.append(i)
            errors.append(str(exc))
        if masks is not None and i < num_masks:
            try:
                mask, _ = read_jpeg(layout.mask_path(root, split_dir, i), target=size, grayscale=True)
                masks[i] = binarize_mask(resize_image(mask, (size, size)))
            except BadImageError as exc:
                if on_bad_image == "raise":
                    raise
                bad_masks.append(i)
                errors.append(str(exc))

    try:
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:  # OpenCV releases the GIL
            jobs = pool.map(decode, range(num_images), chunksize=64)
            # the bar goes to stderr: stdout belongs to the command's own output
            label = f"caching {split_dir} images at {size}px"
            for _ in track(jobs, total=num_images, description=label, console=Console(stderr=True)):
                pass
        images.flush()
        if masks is not None:
            masks.flush()
        meta = {
            "size": size,
            "num_images": num_images,
            "num_masks": num_masks,
            "source_sizes": sources.tolist(),
            "bad": sorted(bad),
            "bad_masks": sorted(bad_masks),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
            meta = json.loads((folder / "meta.json").read_text())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if errors:
        warnings.warn(
            f"{len(errors)} unreadable images left out of the image cache (first: {errors[0]})", stacklevel=3
        )
    return meta
