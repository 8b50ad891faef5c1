#!/usr/bin/env python3
"""Writes the image-decoder fixtures of tests/test_image_codecs.cpp (and a few
fuzz seeds) with Debian's python3-pil 9.4, which decodes JPEG with the system's
libjpeg-turbo 2.1 at its defaults (JDCT_ISLOW, fancy upsampling), as OpenCV does.

  jpeg/<name>.jpg       JPEGs saved by PIL: gray, colour 4:2:0 / 4:2:2 / 4:4:4,
                        progressive, CMYK (Adobe), odd sizes
  jpeg/<name>.pixels    PIL's decode of each (CMYK: PIL's .convert("RGB"))
  exif/orient<k>.jpg    one upright picture saved turned so that EXIF orientation k
                        (1..8) turns it back; orient<k>.pixels: PIL's
                        ImageOps.exif_transpose of the decode; upright.pixels: the
                        picture itself before JPEG compression
  png/<name>.png        PNG variants PIL cannot write (Adam7, 16-bit RGB, 1-bit gray,
                        palette with tRNS, gray + alpha), written here by hand, with
                        the pixels they hold in png/<name>.pixels (16-bit: the high
                        byte; palette: RGBA; checked against PIL where PIL agrees)

A .pixels file is the text line "PIXELS <height> <width> <channels>\\n" and then the
8-bit samples, row by row, channels interleaved. The tests need no PIL.

  /usr/bin/python3 tests/data/images/make_fixtures.py
"""
import io
import os
import struct
import zlib

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ_SEEDS = os.path.join(HERE, "..", "..", "..", "fuzz", "corpus", "image")


def write_pixels(path, height, width, channels, data):
    assert len(data) == height * width * channels
    with open(path, "wb") as f:
        f.write(b"PIXELS %d %d %d\n" % (height, width, channels) + bytes(data))


def pixels_of(img):
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[img.mode]
    return img.height, img.width, channels, img.tobytes()


def picture(width, height):
    """Gradients, a hard-edged disc and thin stripes: chroma upsampling and DCT ringing show."""
    img = Image.new("RGB", (width, height))
    px = img.load()
    for y in range(height):
        for x in range(width):
            r = x * 255 // max(width - 1, 1)
            g = y * 255 // max(height - 1, 1)
            b = ((x + 2 * y) * 37) % 256
            if (x - width / 3) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 4) ** 2:
                r, g, b = 230, 20, 40
            if x % 7 == 3:
                r, g, b = 255 - r, 255 - g, b // 2
            px[x, y] = (r, g, b)
    return img


def cmyk_picture(width, height):
    """PIL's RGB -> CMYK leaves K at 0; a K gradient makes the conversion back use it."""
    c, m, y, _ = picture(width, height).convert("CMYK").split()
    k = Image.linear_gradient("L").resize((width, height)).point(lambda v: v * 3 // 4)
    return Image.merge("CMYK", (c, m, y, k))


def jpeg_fixtures():
    out = os.path.join(HERE, "jpeg")
    os.makedirs(out, exist_ok=True)
    cases = {
        "gray_47x33": (picture(33, 47).convert("L"), dict(quality=90)),
        "rgb420_53x37": (picture(37, 53), dict(quality=85, subsampling=2)),
        "rgb422_31x29": (picture(29, 31), dict(quality=80, subsampling=1)),
        "rgb444_24x32": (picture(32, 24), dict(quality=92, subsampling=0)),
        "progressive420_35x41": (picture(41, 35), dict(quality=75, subsampling=2, progressive=True)),
        "progressive_gray_17x9": (picture(9, 17).convert("L"), dict(quality=60, progressive=True)),
        "cmyk_16x20": (cmyk_picture(20, 16), dict(quality=90)),
    }
    for name, (img, options) in cases.items():
        path = os.path.join(out, name + ".jpg")
        img.save(path, "JPEG", **options)
        decoded = Image.open(path)
        decoded.load()
        if decoded.mode == "CMYK":
            decoded = decoded.convert("RGB")
        write_pixels(os.path.join(out, name + ".pixels"), *pixels_of(decoded))
    return [os.path.join(out, n + ".jpg") for n in ("progressive420_35x41", "cmyk_16x20", "rgb422_31x29")]


# The transpose that EXIF orientation k asks for (PIL's ImageOps.exif_transpose) and its inverse.
ORIENT = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_LEFT_RIGHT),
    3: (Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_180),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, Image.Transpose.FLIP_TOP_BOTTOM),
    5: (Image.Transpose.TRANSPOSE, Image.Transpose.TRANSPOSE),
    6: (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90),
    7: (Image.Transpose.TRANSVERSE, Image.Transpose.TRANSVERSE),
    8: (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270),
}


def exif_fixtures():
    out = os.path.join(HERE, "exif")
    os.makedirs(out, exist_ok=True)
    upright = picture(24, 16)  # 16 rows, 24 columns: a turn swaps them
    write_pixels(os.path.join(out, "upright.pixels"), *pixels_of(upright))
    for k in range(1, 9):
        stored = upright if k == 1 else upright.transpose(ORIENT[k][1])
        exif = Image.Exif()
        exif[0x0112] = k
        exif[0x010F] = "lenet.cpp tests"  # Make: a second IFD entry before nothing else
        path = os.path.join(out, "orient%d.jpg" % k)
        stored.save(path, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())
        decoded = ImageOps.exif_transpose(Image.open(path))
        assert decoded.size == upright.size, (k, decoded.size)
        write_pixels(os.path.join(out, "orient%d.pixels" % k), *pixels_of(decoded))
    return [os.path.join(out, "orient6.jpg"), os.path.join(out, "orient5.jpg")]


# ---- PNGs by hand ----

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, bit_depth, colour_type, rows, interlace=False, extra=b""):
    """rows(y) -> the packed bytes of row y (without the filter byte), or for Adam7 rows(x0, dx, y)."""
    raw = b""
    if not interlace:
        for y in range(height):
            raw += b"\x00" + rows(0, 1, y)
    else:
        # Adam7 passes: (x0, y0, dx, dy)
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)):
            if x0 >= width:
                continue
            for y in range(y0, height, dy):
                raw += b"\x01" + sub_filter(rows(x0, dx, y), bit_depth, colour_type)  # filter 1 (Sub)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) +
            chunk(b"IEND", b""))


def sub_filter(row, bit_depth, colour_type):
    bpp = max(1, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type] * bit_depth // 8)
    return bytes((row[i] - (row[i - bpp] if i >= bpp else 0)) & 0xFF for i in range(len(row)))


def png_fixtures():
    out = os.path.join(HERE, "png")
    os.makedirs(out, exist_ok=True)
    pic = picture(13, 11)  # 11 rows, 13 columns: no Adam7 pass is whole
    rgb = pic.tobytes()
    w, h = pic.size

    def rgb_at(x, y):
        return rgb[(y * w + x) * 3:(y * w + x) * 3 + 3]

    # Adam7, 8-bit RGB: the picture itself.
    data = png(w, h, 8, 2, lambda x0, dx, y: b"".join(rgb_at(x, y) for x in range(x0, w, dx)), interlace=True)
    open(os.path.join(out, "adam7_rgb.png"), "wb").write(data)
    assert Image.open(io.BytesIO(data)).convert("RGB").tobytes() == rgb
    write_pixels(os.path.join(out, "adam7_rgb.pixels"), h, w, 3, rgb)

    # 16-bit RGB: sample v * 256 + (x * 31 + y) % 256 (the low byte varies), decoded to its high byte v.
    def rgb16(x0, dx, y):
        return b"".join(struct.pack(">HHH", *(v * 256 + (x * 31 + y) % 256 for v in rgb_at(x, y)))
                        for x in range(x0, w, dx))
    data = png(w, h, 16, 2, rgb16)
    open(os.path.join(out, "rgb16.png"), "wb").write(data)
    write_pixels(os.path.join(out, "rgb16.pixels"), h, w, 3, rgb)

    # 1-bit gray, a checkerboard of 3-pixel squares: 0 or 255.
    bits = [[1 if (x // 3 + y // 3) % 2 else 0 for x in range(w)] for y in range(h)]

    def pack1(x0, dx, y):
        row = bits[y][x0::dx]
        row += [0] * (-len(row) % 8)
        return bytes(sum(b << (7 - i) for i, b in enumerate(row[j:j + 8])) for j in range(0, len(row), 8))
    data = png(w, h, 1, 0, pack1)
    open(os.path.join(out, "gray1.png"), "wb").write(data)
    assert Image.open(io.BytesIO(data)).convert("L").tobytes() == bytes(255 * b for row in bits for b in row)
    write_pixels(os.path.join(out, "gray1.pixels"), h, w, 1, bytes(255 * b for row in bits for b in row))

    # 4-bit palette of 5 colours, the last two translucent (tRNS): RGBA.
    palette = [(0, 0, 0), (255, 0, 0), (0, 200, 80), (10, 20, 250), (250, 250, 0)]
    alpha = [255, 255, 255, 128, 0]
    index = [[(x + 2 * y) % 5 for x in range(w)] for y in range(h)]

    def pack4(x0, dx, y):
        row = index[y][x0::dx]
        row += [0] * (len(row) % 2)
        return bytes((row[j] << 4) | row[j + 1] for j in range(0, len(row), 2))
    extra = chunk(b"PLTE", b"".join(bytes(c) for c in palette)) + chunk(b"tRNS", bytes(alpha[:5]))
    data = png(w, h, 4, 3, pack4, extra=extra)
    open(os.path.join(out, "palette4_trns.png"), "wb").write(data)
    rgba = bytes(v for row in index for i in row for v in palette[i] + (alpha[i],))
    assert Image.open(io.BytesIO(data)).convert("RGBA").tobytes() == rgba
    write_pixels(os.path.join(out, "palette4_trns.pixels"), h, w, 4, rgba)

    # 8-bit gray + alpha.
    la = bytes(v for y in range(h) for x in range(w) for v in (rgb_at(x, y)[1], (x * 20) % 256))
    data = png(w, h, 8, 4, lambda x0, dx, y: la[(y * w) * 2:(y * w + w) * 2])
    open(os.path.join(out, "gray_alpha.png"), "wb").write(data)
    assert Image.open(io.BytesIO(data)).tobytes() == la
    write_pixels(os.path.join(out, "gray_alpha.pixels"), h, w, 2, la)
    return [os.path.join(out, n + ".png") for n in ("adam7_rgb", "rgb16", "gray1", "palette4_trns", "gray_alpha")]


if __name__ == "__main__":
    seeds = jpeg_fixtures() + exif_fixtures() + png_fixtures()
    os.makedirs(FUZZ_SEEDS, exist_ok=True)
    for path in seeds:  # valid files that reach libpng's and libjpeg's other paths
        name = os.path.basename(os.path.dirname(path)) + "_" + os.path.basename(path)
        with open(path, "rb") as src, open(os.path.join(FUZZ_SEEDS, name), "wb") as dst:
            dst.write(src.read())
