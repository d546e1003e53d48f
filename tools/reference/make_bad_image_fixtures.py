"""Writes Tests/ImagesTests/Fixtures/bad/: a decompression bomb, a small PNG whose header and compressed stream
really describe 16000 x 16000 pixels (1-bit gray, all black: 32 MB of scanlines deflated to about 32 KB; decoded to
RGB it would take 768 MB). Only the standard library is needed."""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb(width, height):
    row = b"\0" + b"\0" * ((width + 7) // 8)  # filter byte, then 1-bit samples
    deflate = zlib.compressobj(9)
    stream = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../Tests/ImagesTests/Fixtures/bad")
    os.makedirs(out, exist_ok=True)
    data = bomb(16000, 16000)
    with open(os.path.join(out, "bomb_16000x16000.png"), "wb") as f:
        f.write(data)
    print(f"bomb_16000x16000.png: {len(data)} bytes")
