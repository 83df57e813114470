"""Turn any uploaded digit picture into the 28x28 MNIST form the model was trained on.

MNIST digits are white on black, fitted into a 20x20 box and centred by their centre of mass in a
28x28 field. Uploads are rarely like that: any size, colour or grey, dark ink on white paper,
transparent PNGs. This module undoes those differences; 28x28 uploads are taken as they are.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE = 28
BOX = 20  # MNIST fits each digit into a 20x20 box before centring it
INK_THRESHOLD = 0.1  # share of the strongest ink below which a pixel counts as background


def read_image(file_obj) -> Image.Image:
    """Open an upload (file object or bytes) as a PIL image; a non-image is a ValueError, not a crash."""
    data = file_obj if isinstance(file_obj, bytes | bytearray) else file_obj.read()
    if not data:
        raise ValueError("the uploaded file is empty; send a PNG, JPEG or BMP picture of one digit")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"the uploaded file is not a readable image ({exc}); send a PNG, JPEG or BMP picture") from None
    return ImageOps.exif_transpose(image)


def ink_map(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1] with the digit bright on a dark background, as MNIST has it."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() < 0.99:  # a transparent background: the opaque part is the digit
            return alpha
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper
        grey, background = 1.0 - grey, 1.0 - background
    return np.clip(grey - background, 0.0, None)


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """Crop the digit, fit it into 20x20 and centre it by mass in 28x28, as MNIST was made."""
    peak = float(ink.max())
    if peak <= 0.05:
        raise ValueError("the image is blank: no digit found")
    ink = ink / peak
    if ink.shape == (SIDE, SIDE):
        return ink.astype(np.float32)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    fitted = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), dtype=np.float32)
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - fitted.shape[0]) // 2, (SIDE - fitted.shape[1]) // 2
    field[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    total = field.sum()
    if total > 0:
        ys, xs = np.indices(field.shape)
        shift_y = int(round(SIDE / 2 - 0.5 - (ys * field).sum() / total))
        shift_x = int(round(SIDE / 2 - 0.5 - (xs * field).sum() / total))
        field = np.roll(field, (shift_y, shift_x), axis=(0, 1))
    return np.clip(field / max(float(field.max()), 1e-6), 0.0, 1.0)


def image_to_input(file_obj) -> np.ndarray:
    """An upload as the model input row: float32, shape (784,), values in [0, 1]."""
    return to_mnist(ink_map(read_image(file_obj))).reshape(SIDE * SIDE).astype(np.float32)
