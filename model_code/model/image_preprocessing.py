"""Turn any uploaded digit picture into the 28x28 MNIST form the model was trained on.

MNIST digits are white on black, fitted into a 20x20 box and centred by their centre of mass in a
28x28 field. Uploads are rarely like that: any size, colour or grey, dark ink on white paper,
transparent PNGs, 16-bit or float pictures. This module undoes those differences; 28x28 uploads
are taken as they are.

Uploads are untrusted. The pixel count is read from the file's header and checked before anything
is decoded, so a small file declaring a huge picture (a decompression bomb) is refused at once; only
common raster formats are opened; every failure to decode is the sender's error (a ValueError).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

SIDE = 28
BOX = 20  # MNIST fits each digit into a 20x20 box before centring it
INK_THRESHOLD = 0.1  # share of the strongest ink below which a pixel counts as background
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")  # not EPS (runs Ghostscript) or other rarities
MAX_PIXELS = 4096 * 4096  # one upload, width x height: a 16-megapixel photo still fits
WORK_SIDE = 1024  # bigger pictures are box-reduced to about this: the digit ends up 20x20 anyway

# Pillow's own bomb check as a second line: it refuses pictures over twice this when opening them.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _content(file_obj) -> bytes:
    data = file_obj.read() if callable(getattr(file_obj, "read", None)) else file_obj
    if not isinstance(data, bytes | bytearray):  # e.g. a JSON value where a file was due
        raise ValueError(f"expected an uploaded file, got {type(data).__name__}")
    return bytes(data)


def read_image(file_obj) -> Image.Image:
    """Open an upload (file object or bytes) as a PIL image; a non-image is a ValueError, not a crash."""
    data = _content(file_obj)
    if not data:
        raise ValueError("the uploaded file is empty; send a PNG, JPEG or BMP picture of one digit")
    # Pillow reports bad files with many exception types (OSError, SyntaxError, struct.error,
    # EOFError, ValueError, DecompressionBombError, ...): whichever it is, the file is at fault.
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Image.DecompressionBombError:
        raise ValueError(f"the picture has more than {MAX_PIXELS} pixels; send a smaller one") from None
    except Exception as exc:
        raise ValueError(f"the uploaded file is not a readable image ({exc}); send a PNG, JPEG or BMP picture") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"the picture is {width}x{height} pixels, more than {MAX_PIXELS}; send a smaller one")
    if not width or not height:
        raise ValueError("the picture has no pixels")
    try:
        image.draft(None, (WORK_SIDE, WORK_SIDE))  # a JPEG decodes at 1/2, 1/4 or 1/8 size if still big enough
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception as exc:
        raise ValueError(f"the uploaded file is not a readable image ({exc}); send a PNG, JPEG or BMP picture") from None


def _measurable(image: Image.Image) -> Image.Image:
    """The picture as L, LA, RGB, RGBA, I or F: modes whose pixels can be averaged and measured."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return image
    if mode.startswith("I;16"):
        return image.convert("I")  # keeps the 16-bit levels; converting to L would clip them at 255
    if mode == "LAB":
        return image.getchannel("L")
    if {"A", "a"} & set(image.getbands()) or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("L")  # 1-bit, palette, CMYK, YCbCr, HSV, ...


def grey_levels(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1]: 8-bit modes over 255, 16-bit levels over 65535, floats by their own range."""
    if image.mode not in ("I", "F"):
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("the picture holds NaN or infinite pixel values")
    low, high = float(values.min()), float(values.max())
    if image.mode == "I" and low >= 0 and high <= 65535:  # how Pillow holds 16-bit pictures
        low, high = 0.0, 65535.0
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def ink_map(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1] with the digit bright on a dark background, as MNIST has it."""
    image = _measurable(image)
    factor = max(image.size) // WORK_SIDE
    if factor >= 2:  # the float maps below cost 16 bytes a pixel
        image = image.reduce(factor)
    if image.mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() < 0.99:  # a transparent background: the opaque part is the digit
            return alpha
    grey = grey_levels(image)
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
