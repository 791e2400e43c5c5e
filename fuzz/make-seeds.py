#!/usr/bin/env python3
"""Write fuzz seeds for the `frame` and `translator` targets from the real
captures in passt-core/tests/vectors/*.pcap (classic pcap, Ethernet).

frame seeds:      0x00 (whole-frame mode) + the frame
translator seeds: one "batch of one frame" command per frame
                  (0x00, count-1 = 0x00, u16 LE length, frame bytes)
Run from anywhere: python3 fuzz/make-seeds.py
"""
import glob
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
vectors = os.path.join(here, "..", "passt-core", "tests", "vectors")


def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


for target in ("frame", "translator"):
    os.makedirs(os.path.join(here, "seeds", target), exist_ok=True)
for path in sorted(glob.glob(os.path.join(vectors, "*.pcap"))):
    base = os.path.splitext(os.path.basename(path))[0]
    script = b""
    for i, f in enumerate(frames(path)):
        with open(os.path.join(here, "seeds", "frame", f"{base}-{i:02}"), "wb") as out:
            out.write(b"\x00" + f)
        script += b"\x00\x00" + struct.pack("<H", len(f)) + f
    # One translator seed per file: the whole capture as a conversation.
    with open(os.path.join(here, "seeds", "translator", base), "wb") as out:
        out.write(script)


# control seeds: one control byte (read cut, failing ports), then a stream
# of configuration-socket requests (doc/control.md), after the hello the
# target sends itself.
def ctl_msg(kind, body):
    return b"PCTL" + bytes([1, kind, 0, 0]) + struct.pack(">I", len(body)) + body


def ctl_specs(kind, proto, specs):
    body = bytes([proto, len(specs)])
    for s in specs:
        body += struct.pack(">H", len(s)) + s
    return ctl_msg(kind, body)


HELLO, LIST, ADD, DELETE, CLEAR, REPLACE = 1, 2, 3, 4, 5, 6
control = {
    "list": b"\x00" + ctl_msg(LIST, b"\x06") + ctl_msg(LIST, b"\x11"),
    "add-delete": b"\x03" + ctl_specs(ADD, 6, [b"9090", b"0.0.0.0/5000:192.0.2.5"])
    + ctl_specs(DELETE, 6, [b"9090"]) + ctl_msg(LIST, b"\x06"),
    "replace-fail": b"\x95" + ctl_specs(REPLACE, 17, [b"5000-5010:6000"])
    + ctl_msg(CLEAR, b"\x11") + ctl_msg(HELLO, b"\x01\x02"),
    "hostile": b"\x21" + ctl_specs(ADD, 6, [b"80-22", b"auto"])
    + ctl_msg(0x77, b"") + b"PCTL\x01\x03\x00\x00\xff\xff\xff\xff",
    "request": ctl_specs(ADD, 6, [b"22,80"]),
}
os.makedirs(os.path.join(here, "seeds", "control"), exist_ok=True)
for name, data in control.items():
    with open(os.path.join(here, "seeds", "control", name), "wb") as out:
        out.write(data)
