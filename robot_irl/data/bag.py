"""rosbag2 MCAP bags of a collection session that survive a ``kill -9``, and a reader that accepts torn ones.

Writing goes through ``rosbags`` (a rosbag2 folder ``<bag>/`` with ``<bag>.mcap`` and, once closed,
``metadata.yaml``) with one change: rosbags' MCAP storage keeps messages in a 1 MiB in-memory chunk and writes the
index and footer only at ``close()``, so a killed process leaves an unreadable file. :class:`BagWriter` writes each
record straight to the file (MCAP allows unchunked messages), flushes to the OS after every :meth:`BagWriter.flush`
(the recorder flushes every control tick) and fsyncs at most every ``fsync_every_s``. A killed writer loses nothing
that was flushed; a power cut loses at most ``fsync_every_s``. A cleanly closed bag has the usual summary, footer and
``metadata.yaml``, so rosbags (and ``ros2 bag``) read it normally.

:func:`read_bag` walks the MCAP records itself (magic, then ``opcode u8, length u64, payload``; Schema 0x03,
Channel 0x04, Message 0x05, Chunk 0x06), so it reads closed bags and torn ones alike and stops at a truncated last
record. Messages stay CDR bytes (exactly what went over DDS); :func:`deserialize` turns them into rosbags message
objects (``msg.layout.dim[0].label``, ``msg.data`` as a numpy array, ...).

Log times are the recorder's arrival wall times in ns, forced non-decreasing (rosbags requires that of unindexed
bags), so replaying a bag in log order replays the session in the order the recorder saw it.
"""
from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

MCAP_MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F
#: the ROS distribution whose message definitions the bag stores (rclpy 9.x is Kilted)
TYPESTORE = "ROS2_KILTED"


class BagError(RuntimeError):
    """A bag that cannot be written or read (the message names the path)."""


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag: its topic, type (``std_msgs/msg/String``), log time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    log_time: int
    data: bytes


_TYPESTORE = None


def typestore():
    """The rosbags typestore used to describe and deserialize messages (built once)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_typestore

        _TYPESTORE = get_typestore(getattr(Stores, TYPESTORE))
    return _TYPESTORE


def deserialize(message: BagMessage) -> Any:
    """The message as a rosbags object (field names as in ROS; arrays as numpy arrays)."""
    return typestore().deserialize_cdr(message.data, message.msgtype)


def serialize(msg: Any, msgtype: str) -> bytes:
    """A rosbags message object -> CDR bytes (for tests and tools that write bags without rclpy)."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


def _storage_class():
    """rosbags' MCAP storage writing every record straight to the file (no in-memory chunk).

    The parent class writes schema and channel records into its pending chunk; they are moved to the file so the
    chunk stays empty and ``close()`` writes the summary and footer without a chunk.
    """
    from rosbags.rosbag2 import storage_mcap as mcap

    class FlushingMcapStorage(mcap.McapWriter):
        def _drop_chunk(self) -> None:
            self.chunk.bio.seek(0)
            self.chunk.bio.truncate()

        def add_msgtype(self, connection) -> None:
            super().add_msgtype(connection)
            self._drop_chunk()
            mcap.write_schema(self.bio, self.schemas[-1])

        def add_connection(self, connection, offered_qos_profiles: str) -> None:
            super().add_connection(connection, offered_qos_profiles)
            self._drop_chunk()
            mcap.write_channel(self.bio, self.channels[-1], self.schemas)

        def write(self, connection, timestamp: int, data) -> None:
            self.message_start_time = min(timestamp, self.message_start_time)
            self.message_end_time = max(timestamp, self.message_end_time)
            self.channel_stats[connection.id] += 1
            rec = BytesIO()
            mcap.write_uint16(rec, connection.id)
            mcap.write_uint32(rec, 0)
            mcap.write_uint64(rec, timestamp)
            mcap.write_uint64(rec, timestamp)
            rec.write(data)
            mcap.write_record(self.bio, OP_MESSAGE, rec)

    return FlushingMcapStorage


class BagWriter:
    """A rosbag2 MCAP bag at ``path`` (a folder that must not exist) with ``topics`` = {topic: msgtype}.

    ``write(topic, cdr_bytes)`` takes serialized messages (e.g. from an rclpy ``raw=True`` subscription).
    """

    def __init__(self, path: str | Path, topics: Mapping[str, str], fsync_every_s: float = 1.0) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag {self.path} already exists; choose a new folder")
        writer_class = type("FlushingWriter", (Writer,), {"STORAGE_PLUGINS": {StoragePlugin.MCAP: _storage_class()}})
        self._writer = writer_class(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        store = typestore()
        self._connections = {topic: self._writer.add_connection(topic, msgtype, typestore=store)
                             for topic, msgtype in topics.items()}
        self.topics = dict(topics)
        self.fsync_every_s = float(fsync_every_s)
        self._last_time = 0
        self._last_fsync = time.monotonic()
        self.count = 0
        self.closed = False
        self.flush(fsync=True)

    @property
    def mcap_path(self) -> Path:
        return self.path / f"{self.path.name}.mcap"

    def write(self, topic: str, data: bytes, wall_ns: int | None = None) -> None:
        """Append one serialized message (log time: ``wall_ns`` or now, never earlier than the previous one)."""
        if self.closed:
            raise BagError(f"bag {self.path} is closed")
        if topic not in self._connections:
            raise BagError(f"bag {self.path}: unknown topic {topic!r}; topics: {sorted(self._connections)}")
        stamp = max(int(wall_ns if wall_ns is not None else time.time_ns()), self._last_time)
        self._last_time = stamp
        self._writer.write(self._connections[topic], stamp, data)
        self.count += 1

    def flush(self, fsync: bool | None = None) -> None:
        """Hand what was written to the OS (survives ``kill -9``); fsync when asked or when ``fsync_every_s`` passed."""
        storage = self._writer.storage
        if storage is None:
            return
        storage.bio.flush()
        now = time.monotonic()
        if fsync or (fsync is None and now - self._last_fsync >= self.fsync_every_s):
            os.fsync(storage.bio.fileno())
            self._last_fsync = now

    def close(self) -> None:
        """Write the summary, footer and ``metadata.yaml`` (a bag closed this way reads with any rosbag2 tool)."""
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        for path in (self.mcap_path, self.path / "metadata.yaml"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        """Close the file without a summary (what a crash leaves; :func:`read_bag` still reads it)."""
        if not self.closed:
            self.closed = True
            self._writer.abort()


# -- reading -------------------------------------------------------------------------------------------------------

def mcap_file(path: str | Path) -> Path:
    """The ``.mcap`` file of a bag folder (or the file itself)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise BagError(f"bag {path} does not exist")
    files = sorted(path.glob("*.mcap"))
    if len(files) != 1:
        raise BagError(f"bag {path}: expected one .mcap file, found {[f.name for f in files]}")
    return files[0]


def _string(buf: bytes, offset: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, offset)
    return buf[offset + 4:offset + 4 + n].decode(), offset + 4 + n


def _records(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """(opcode, payload) of each complete record from ``start``; stops at a truncated one or the footer."""
    offset = start
    while offset + 9 <= len(data):
        opcode, length = data[offset], struct.unpack_from("<Q", data, offset + 1)[0]
        end = offset + 9 + length
        if end > len(data) or opcode == OP_FOOTER:
            return
        yield opcode, data[offset + 9:end]
        offset = end


def _chunk_payload(payload: bytes) -> bytes:
    _, _, uncompressed_size, _ = struct.unpack_from("<QQQI", payload, 0)
    compression, offset = _string(payload, 28)
    (size,) = struct.unpack_from("<Q", payload, offset)
    records = payload[offset + 8:offset + 8 + size]
    if compression == "":
        return records
    if compression == "zstd":
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        return zstd.decompress(records)
    raise BagError(f"unsupported MCAP chunk compression {compression!r}")


def read_bag(path: str | Path, topics: set[str] | None = None) -> Iterator[BagMessage]:
    """The messages of a bag folder or ``.mcap`` file in file order, closed or torn by a crash."""
    file = mcap_file(path)
    data = file.read_bytes()
    if not data.startswith(MCAP_MAGIC):
        raise BagError(f"{file} is not an MCAP file (bad magic)")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    stack = [_records(data, len(MCAP_MAGIC))]
    while stack:
        for opcode, payload in stack[-1]:
            if opcode == OP_SCHEMA:
                (sid,) = struct.unpack_from("<H", payload, 0)
                schemas[sid] = _string(payload, 2)[0]
            elif opcode == OP_CHANNEL:
                cid, sid = struct.unpack_from("<HH", payload, 0)
                topic, _ = _string(payload, 4)
                channels[cid] = (topic, schemas.get(sid, ""))
            elif opcode == OP_MESSAGE:
                cid, _, log_time, _ = struct.unpack_from("<HIQQ", payload, 0)
                topic, msgtype = channels.get(cid, ("", ""))
                if cid in channels and (topics is None or topic in topics):
                    yield BagMessage(topic, msgtype, log_time, payload[22:])
            elif opcode == OP_CHUNK:
                stack.append(_records(_chunk_payload(payload), 0))
                break
            elif opcode == OP_DATA_END:
                stack.clear()
                break
        else:
            stack.pop()


def bag_summary(path: str | Path) -> dict:
    """Topic counts, time range and whether the bag was closed cleanly (``metadata.yaml`` and a footer)."""
    file = mcap_file(path)
    counts: dict[str, int] = {}
    first = last = None
    for m in read_bag(file):
        counts[m.topic] = counts.get(m.topic, 0) + 1
        first = m.log_time if first is None else first
        last = m.log_time
    closed = file.read_bytes().endswith(MCAP_MAGIC) and (file.parent / "metadata.yaml").is_file()
    return {"path": str(file), "closed": closed, "messages": sum(counts.values()), "topics": counts,
            "start_ns": first, "end_ns": last}
