"""Damaging checkpoint files the way disks and kills do, for tests."""
import struct
import zipfile


def flip_tensor_byte(src, dst):
    """Copy ``src`` to ``dst`` with one byte of its largest tensor's data
    flipped: the zip structure stays intact, only a CRC fails."""
    with zipfile.ZipFile(src) as archive:
        info = max((i for i in archive.infolist() if '/data/' in i.filename),
                   key=lambda i: i.file_size)
    data = bytearray(open(src, 'rb').read())
    # Local header: 30 bytes, then the name and the extra field.
    name_len, extra_len = struct.unpack(
        '<HH', data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x40
    with open(dst, 'wb') as f:
        f.write(bytes(data))
