"""Hand-made hostile ``.gcz`` files, built from format_spec.md: each breaks one rule of the spec.

Shared by the differential test of gcodec against the reference decoder and the CLI robustness
tests. Every file has a valid CRC32 unless its name says otherwise.
"""
from __future__ import annotations

import struct
import zlib

MAGIC = b"\x89GCZ"
HASH = bytes.fromhex("0a1b2c3d")


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def section(kind: int, body: bytes, critical: bool = True, length: bytes | None = None) -> bytes:
    return bytes([kind, 1 if critical else 0]) + (uleb(len(body)) if length is None else length) + body


def envelope(sections: bytes, version: int = 1) -> bytes:
    data = MAGIC + bytes([version]) + sections
    return data + struct.pack("<I", zlib.crc32(data))


def image(width: int = 40, height: int = 30) -> bytes:
    return section(1, uleb(width) + uleb(height))


def model(name: bytes = b"gcz-c4", digest: bytes = HASH) -> bytes:
    return section(2, bytes([len(name)]) + name + digest)


def latent(channels: int = 1, levels: int = 2, downsampling: int = 16) -> bytes:
    return section(3, bytes([channels, levels, downsampling]))


def tables(precision: int = 8, fields: tuple[int, ...] = (128,), raw: bytes | None = None) -> bytes:
    if raw is not None:
        return section(4, raw)
    bits, nbits = 0, 0
    for f in fields:
        bits, nbits = (bits << precision) | f, nbits + precision
    pad = (-nbits) % 8
    return section(4, bytes([precision]) + (bits << pad).to_bytes((nbits + pad) // 8, "big"))


def payload(body: bytes = b"\x00\x00") -> bytes:
    return section(5, body)


def required(**overrides: bytes) -> bytes:
    parts = {"image": image(), "model": model(), "latent": latent(), "tables": tables(), "payload": payload()}
    parts.update(overrides)
    return b"".join(parts[k] for k in ("image", "model", "latent", "tables", "payload"))


def selective_parts(cell: int = 8, classes: int = 12, background: int = 0, regions: int = 0,
                    heatmap: bytes = b"\x00\x00\x00\x00") -> bytes:
    return section(7, heatmap) + section(8, bytes([cell, classes, background]) + uleb(regions))


def sc_required(channels: int = 8, levels: int = 5, width: int = 40, height: int = 30) -> bytes:
    fields = tuple([51] * (levels - 1)) * channels
    return required(image=image(width, height), model=model(b"gcz-sc-c8"),
                    latent=latent(channels, levels, 8), tables=tables(8, fields))


def valid() -> bytes:
    """A small valid plain file (C = 1, L = 2)."""
    return envelope(required())


def invalid_files() -> dict[str, bytes]:
    """Files the spec makes invalid, by the rule they break (sections 1-5 and the limits of 7)."""
    base = required()
    files = {
        "bad_magic": b"\x89GCY\x01" + base[:4],
        "version_0": envelope(base, version=0),
        "version_2": envelope(base, version=2),
        "too_short": MAGIC + b"\x01\x00\x00",
        "crc_mismatch": envelope(base)[:-1] + b"\x00",
        "truncated_section": envelope(base[:-1]),
        "length_past_crc": envelope(base + bytes([0x40, 0, 10])),
        "non_minimal_length": envelope(base + section(0x40, b"", False, length=b"\x80\x00")),
        "overlong_length": envelope(base + section(0x40, b"", False, length=b"\x80\x80\x80\x80\x80\x00")),
        "duplicate_image": envelope(base + image()),
        "duplicate_realism": envelope(base + section(6, b"\x10", False) + section(6, b"\x10", False)),
        "duplicate_colour": envelope(base + section(9, b"\x09\x04", False) * 2),
        "unknown_critical": envelope(base + section(0x42, b"")),
        "missing_payload": envelope(base[:-len(payload())]),
        "out_of_order": envelope(model() + image() + base[len(image()) + len(model()):]),
        "width_0": envelope(required(image=image(0, 30))),
        "height_0": envelope(required(image=image(40, 0))),
        "width_65536": envelope(required(image=image(65536, 30))),
        "image_trailing_byte": envelope(required(image=section(1, uleb(40) + uleb(30) + b"\x00"))),
        "model_name_empty": envelope(required(model=model(b""))),
        "model_name_65": envelope(required(model=model(b"m" * 65))),
        "model_name_control": envelope(required(model=model(b"gcz\x07c4"))),
        "model_name_not_ascii": envelope(required(model=model(b"gcz-\xc3\xa9"))),
        "model_hash_short": envelope(required(model=section(2, b"\x06gcz-c4" + HASH[:3]))),
        "latent_short": envelope(required(latent=section(3, b"\x01\x02"))),
        "channels_0": envelope(required(latent=latent(0, 2, 16), tables=tables(8, ()))),
        "levels_1": envelope(required(latent=latent(1, 1, 16), tables=tables(8, ()))),
        "downsampling_0": envelope(required(latent=latent(1, 2, 0))),
        "precision_1": envelope(required(tables=tables(1, (1,)))),
        "precision_17": envelope(required(tables=tables(17, (1,)))),
        "tables_long": envelope(required(tables=section(4, b"\x08\x80\x00"))),
        "tables_padding": envelope(required(tables=tables(4, (8,))[:-1] + b"\x81")),
        "frequency_0": envelope(required(tables=tables(8, (0,)))),
        "last_frequency_0": envelope(required(latent=latent(1, 3, 16), tables=tables(2, (2, 2)))),
        "realism_101": envelope(base + section(6, b"\x65", False)),
        "realism_long": envelope(base + section(6, b"\x10\x10", False)),
        "context_empty": envelope(base + section(10, b"")),
        "context_long": envelope(base + section(10, b"\x64\x00")),
        "colour_short": envelope(base + section(9, b"\x09", False)),
        "colour_cell_4": envelope(base + section(9, b"\x04\x04", False)),
        "colour_step_0": envelope(base + section(9, b"\x09\x00", False)),
        "colour_step_65": envelope(base + section(9, b"\x09\x41", False)),
        "colour_grid_too_large": envelope(required(image=image(65535, 65535)) + section(9, b"\x05\x04", False)),
        "heatmap_without_labels": envelope(sc_required() + section(7, b"\x00")),
        "labels_without_heatmap": envelope(sc_required() + section(8, b"\x08\x0c\x00\x00")),
        "selective_downsampling_4": envelope(required(latent=latent(1, 2, 4)) + selective_parts()),
        "labels_truncated": envelope(sc_required() + section(7, b"") + section(8, b"\x08\x0c")),
        "labels_cell_3": envelope(sc_required() + selective_parts(cell=3)),
        "labels_classes_0": envelope(sc_required() + selective_parts(classes=0, background=0)),
        "labels_background": envelope(sc_required() + selective_parts(classes=12, background=12)),
        "labels_too_many_regions": envelope(sc_required() + selective_parts(cell=16, regions=7)),
        "too_many_sections": envelope(base + section(0x42, b"", False) * 300),
    }
    return files


def hostile_but_valid() -> dict[str, bytes]:
    """Files the spec allows (a reader must accept them) that look odd."""
    base = required()
    return {
        "valid": envelope(base),
        "unknown_optional": envelope(base + section(0x42, b"xyz", False)),
        "unknown_optional_twice": envelope(base + section(0x42, b"", False) * 2),
        "reserved_flag_bits": envelope(base + section(0x42, b"", False)[:1] + b"\x02" + b"\x00"),
        "many_sections_at_limit": envelope(base + section(0x42, b"", False) * (256 - 5)),
        "largest_image": envelope(required(image=image(65535, 65535))),
        "realism_100": envelope(base + section(6, b"\x64", False)),
        "selective_empty": envelope(sc_required() + selective_parts()),
    }
