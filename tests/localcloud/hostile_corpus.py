"""Hostile and unusual uploads for the prediction path, generated here: nothing binary is checked in.

`hostile_files()`: files every prediction must refuse with a 4xx (decompression bombs in each
format, truncated and corrupted pictures, non-pictures, NaN and infinite pixels, blank pictures).
`deep_images()`: the same digit in every depth and colour mode, which must all be answered alike.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

SIDE = 28


def digit() -> np.ndarray:
    """A hand-drawn "7", white on black in 28x28 like MNIST (uint8)."""
    image = Image.new("L", (SIDE, SIDE))
    ImageDraw.Draw(image).line([(6, 6), (21, 6), (12, 23)], fill=255, width=3)
    return np.asarray(image)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    return encode(Image.fromarray(pixels), "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, bit_depth: int = 1, rows: int | None = None) -> bytes:
    """A grey PNG whose header declares width x height; `rows` zero rows of data follow (all by default).

    13000 x 13000 at one bit a pixel compresses to about 23 KB and decodes to 169 million pixels."""
    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height if rows is None else rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_with_text_bomb() -> bytes:
    """A blank 28x28 PNG carrying a zTXt chunk that inflates to 20 MB."""
    packer = zlib.compressobj(9)
    text = b"".join(packer.compress(b"\x00" * 1_000_000) for _ in range(20)) + packer.flush()
    plain = png(np.zeros((SIDE, SIDE), np.uint8))
    return plain[:33] + _chunk(b"zTXt", b"comment\x00\x00" + text) + plain[33:]


def gif_declaring(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00;"


def bmp_declaring(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\x00" * 16


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian grey TIFF with one uncompressed strip of 16 bytes where width x height are due."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8 + 2 + 12 * 8 + 4), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\x00" * 4
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 16


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 28x28 JPEG with its frame header (SOF0) rewritten to width x height."""
    data = bytearray(encode(Image.fromarray(digit()), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def float_tiff(values: np.ndarray) -> bytes:
    return encode(Image.fromarray(values.astype(np.float32), mode="F"), "TIFF")


def _flipped(data: bytes, seed: int, flips: int = 12) -> bytes:
    noisy = bytearray(data)
    rng = random.Random(seed)
    for _ in range(flips):
        noisy[rng.randrange(40, len(noisy))] ^= 1 << rng.randrange(8)
    return bytes(noisy)


def hostile_files() -> dict[str, bytes]:
    """Name -> content of uploads that must all be refused with a 4xx and a message, quickly."""
    good_png = png(digit())
    good_jpeg = encode(Image.fromarray(digit()), "JPEG")
    nan = digit().astype(np.float32) / 255
    nan[3, 3] = np.nan
    inf = digit().astype(np.float32)
    inf[0, 0] = np.inf
    return {
        "bomb-13000x13000.png": png_declaring(13000, 13000),
        "bomb-just-over-the-limit.png": png_declaring(4097, 4097, bit_depth=8),
        "header-only-100000x100000.png": png_declaring(100_000, 100_000, rows=0),
        "bomb-65535x65535.gif": gif_declaring(65535, 65535),
        "bomb-30000x30000.bmp": bmp_declaring(30000, 30000),
        "bomb-60000x60000.tiff": tiff_declaring(60000, 60000),
        "bomb-65500x65500.jpg": jpeg_declaring(65500, 65500),
        "bomb-60000x60000.pgm": b"P5\n60000 60000\n255\n" + b"\x00" * 64,
        "zero-width.bmp": bmp_declaring(0, 28),
        "text-bomb-blank.png": png_with_text_bomb(),
        "truncated.png": good_png[: len(good_png) // 2],
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "header-only.png": good_png[:33],
        "bad-crc.png": good_png[:29] + b"\x00\x00\x00\x00" + good_png[33:],
        "bit-flipped.png": _flipped(good_png, 1),
        "bit-flipped.jpg": _flipped(good_jpeg, 2, flips=200),
        "empty.png": b"",
        "one-byte.png": b"\x89",
        "random.bin": random.Random(3).randbytes(4096),
        "text.txt": b"hello, this is not a picture\n",
        "document.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "postscript.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n",
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><path d="M6 6L21 6"/></svg>',
        "archive.zip": b"PK\x05\x06" + b"\x00" * 18,
        "icon.ico": encode(Image.fromarray(digit()), "ICO"),
        "nan-pixel.tiff": float_tiff(nan),
        "infinite-pixel.tiff": float_tiff(inf),
        "blank-float.tiff": float_tiff(np.full((SIDE, SIDE), 0.5)),
        "blank-16bit.png": encode(Image.fromarray(np.zeros((SIDE, SIDE), np.uint16)), "PNG"),
        "one-pixel.png": png(np.full((1, 1), 255, np.uint8)),
    }


def deep_images() -> dict[str, bytes]:
    """The digit in every depth and mode: each answer must match the plain 8-bit PNG's."""
    pixels = digit()
    grey = Image.fromarray(pixels)
    rgb = grey.convert("RGB")
    wide = pixels.astype(np.uint16) * 257  # the same levels over the full 16-bit range
    transparent = Image.fromarray(np.stack([np.zeros_like(pixels)] * 3 + [pixels], axis=-1))
    return {
        "grey-8bit.png": png(pixels),
        "grey-16bit.png": encode(Image.fromarray(wide), "PNG"),
        "grey-16bit-big-endian.tiff": encode(Image.frombytes("I;16B", (SIDE, SIDE), wide.astype(">u2").tobytes()), "TIFF"),
        "grey-32bit-int.tiff": encode(Image.fromarray(wide.astype(np.int32)), "TIFF"),
        "float-0-to-1.tiff": float_tiff(pixels / 255),
        "float-0-to-1000.tiff": float_tiff(pixels / 255 * 1000),
        "float-negative.tiff": float_tiff(pixels / 255 * 2 - 1),
        "one-bit.png": encode(grey.convert("1", dither=Image.Dither.NONE), "PNG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "palette-transparent.png": encode(transparent.convert("P"), "PNG"),
        "grey-alpha.png": encode(Image.fromarray(np.stack([np.zeros_like(pixels), pixels], axis=-1), mode="LA"), "PNG"),
        "cmyk.tiff": encode(rgb.convert("CMYK"), "TIFF"),
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG", quality=100),
        "ycbcr.tiff": encode(rgb.convert("YCbCr"), "TIFF"),
        "lab.tiff": encode(rgb.convert("LAB"), "TIFF"),
        "rgb.bmp": encode(rgb, "BMP"),
        "animated.gif": encode(grey, "GIF", save_all=True, append_images=[Image.new("L", (SIDE, SIDE))]),
    }


def paper_style(scale: int) -> bytes:
    """The digit `scale` times larger, dark on white: a picture the runtime has to crop and fit."""
    return png(255 - np.kron(digit(), np.ones((scale, scale), np.uint8)))
