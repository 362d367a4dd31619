"""The sealer's own RocksDB per shard: event-tree nodes, state-tree leaves, blocks, checkpoints.

Lives at `<LEDGERFS_DATA_DIR>/attestation/<CODE>/`, apart from the writer's event store, so
sealing never writes the writer's database. One process opens it read-write (the sealer);
others open it as a RocksDB secondary instance (`catch_up()`) to serve proofs.

Key invariant: one seal is ONE `WriteBatch` with a synced WAL (`SealStore.write_seal`): the new
tree nodes, the changed state leaves, the block header, the signed checkpoint and the new head
become durable together, so the head never names a height whose data is missing. Everything
below the head is immutable, so readers need no lock.

Column families (integers big-endian, so byte order is numeric order):

| family        | key                          | value                                       |
|---------------|------------------------------|---------------------------------------------|
| nodes         | level (1) || index (8)       | perfect-subtree hash (32), see proofs.core.tree |
| leaf_versions | position (8) || height (8)   | state leaf bytes from that height on        |
| touched       | height (8)                   | positions (8 each) whose leaf the block changed |
| accounts      | account id                   | position (8)                                |
| blocks        | height (8)                   | canonical JSON block header                 |
| checkpoints   | height (8)                   | canonical JSON {"note", "public_key"}       |
| meta          | b"head"                      | canonical JSON `SealHead`                   |
| meta          | b"ledger"                    | the ledger code (checked on open)           |
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from rocksdict import AccessType, Options, Rdict, WriteBatch, WriteOptions

from ledger.core.canonical import encode as canonical_encode

COLUMN_FAMILIES = (
    "nodes", "leaf_versions", "touched", "accounts", "blocks", "checkpoints", "meta",
)
HEAD_KEY = b"head"
LEDGER_KEY = b"ledger"
_NODE = struct.Struct(">BQ")
_U64 = struct.Struct(">Q")
_VERSION = struct.Struct(">QQ")
_MAX_U64 = 2**64 - 1


class SealStoreError(Exception):
    """Root of the seal store's exceptions (I/O, locking, misuse)."""


@dataclass(frozen=True)
class SealHead:
    """Where sealing stands: the sealed tree size and what the next seal chains to."""

    tree_size: int = 0
    height: int = 0
    state_size: int = 0
    last_event_hash: str = "00" * 32
    header_hash: str = "00" * 32
    note_hash: str = "00" * 32


@dataclass(frozen=True)
class CheckpointRecord:
    height: int
    note: str
    public_key: str


class SealStore:
    """A shard's seal store. `mode` is "rw" (the sealer), "secondary" or "read_only"."""

    def __init__(
        self, path: str | Path, ledger: str, *, mode: str = "rw",
        secondary_path: str | Path | None = None, sync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.ledger = ledger
        self.mode = mode
        options = Options(raw_mode=True)
        if mode == "rw":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            options.create_if_missing(True)
            options.create_missing_column_families(True)
            access = AccessType.read_write()
        elif mode == "secondary":
            if secondary_path is None:
                raise SealStoreError("a secondary seal store needs a secondary_path")
            options.set_max_open_files(-1)  # RocksDB requires it of secondary instances
            access = AccessType.secondary(str(secondary_path))
        elif mode == "read_only":
            access = AccessType.read_only(False)
        else:
            raise SealStoreError(f"unknown mode {mode!r}")
        families = {name: Options(raw_mode=True) for name in COLUMN_FAMILIES}
        try:
            self._db = Rdict(str(self.path), options, families, access)
        except Exception as exc:  # rocksdict raises plain Exception for I/O and lock errors
            raise SealStoreError(f"cannot open seal store at {self.path}: {exc}") from exc
        self._families = {name: self._db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._handles = {
            name: self._db.get_column_family_handle(name) for name in COLUMN_FAMILIES
        }
        self._write_options = WriteOptions()
        self._write_options.sync = sync
        self._check_ledger()

    def _check_ledger(self) -> None:
        meta = self._families["meta"]
        stored = meta.get(LEDGER_KEY)
        if stored is None and self.mode == "rw":
            meta.put(LEDGER_KEY, self.ledger.encode(), self._write_options)
        elif stored is not None and stored != self.ledger.encode():
            self.close()
            raise SealStoreError(
                f"{self.path} seals ledger {stored.decode()!r}, not {self.ledger!r}"
            )

    # -- reads ---------------------------------------------------------------------------------

    def head(self) -> SealHead:
        data = self._families["meta"].get(HEAD_KEY)
        return SealHead() if data is None else SealHead(**orjson.loads(data))

    def node(self, level: int, index: int) -> bytes | None:
        return self._families["nodes"].get(_NODE.pack(level, index))

    def block(self, height: int) -> dict | None:
        data = self._families["blocks"].get(_U64.pack(height))
        return None if data is None else orjson.loads(data)

    def checkpoint(self, height: int) -> CheckpointRecord | None:
        data = self._families["checkpoints"].get(_U64.pack(height))
        if data is None:
            return None
        record = orjson.loads(data)
        return CheckpointRecord(height, record["note"], record["public_key"])

    def position(self, account_id: str) -> int | None:
        data = self._families["accounts"].get(account_id.encode())
        return None if data is None else _U64.unpack(data)[0]

    def leaf_at(self, position: int, height: int) -> bytes | None:
        """The state leaf at `position` as of block `height` (None before it existed)."""
        it = self._families["leaf_versions"].iter()
        it.seek_for_prev(_VERSION.pack(position, min(height, _MAX_U64)))
        if not it.valid() or _VERSION.unpack(it.key())[0] != position:
            return None
        return it.value()

    def leaves_at(self, height: int, state_size: int) -> list[bytes]:
        """All state leaves as of block `height`, in position order."""
        leaves = []
        it = self._families["leaf_versions"].iter()
        for position in range(state_size):
            it.seek_for_prev(_VERSION.pack(position, height))
            if not it.valid() or _VERSION.unpack(it.key())[0] != position:
                raise SealStoreError(f"state leaf {position} missing at height {height}")
            leaves.append(it.value())
        return leaves

    def touched(self, height: int) -> list[int]:
        data = self._families["touched"].get(_U64.pack(height)) or b""
        return [value for (value,) in _U64.iter_unpack(data)]

    # -- writes --------------------------------------------------------------------------------

    def write_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Write tree nodes alone (building a tree outside sealing, e.g. benchmarks)."""
        batch = WriteBatch(raw_mode=True)
        handle = self._handles["nodes"]
        for level, index, digest in nodes:
            batch.put(_NODE.pack(level, index), digest, handle)
        self._write(batch)

    def write_seal(
        self, *, head: SealHead, nodes: Iterable[tuple[int, int, bytes]],
        leaves: Iterable[tuple[int, bytes]], new_accounts: Iterable[tuple[str, int]],
        header: dict, checkpoint: CheckpointRecord,
    ) -> None:
        """Everything one seal produces, in one synced write (module invariant)."""
        handles = self._handles
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        node_handle = handles["nodes"]
        for level, index, digest in nodes:
            put(_NODE.pack(level, index), digest, node_handle)
        height = head.height
        positions = []
        for position, leaf in leaves:
            put(_VERSION.pack(position, height), leaf, handles["leaf_versions"])
            positions.append(position)
        put(_U64.pack(height), b"".join(map(_U64.pack, positions)), handles["touched"])
        for account_id, position in new_accounts:
            put(account_id.encode(), _U64.pack(position), handles["accounts"])
        put(_U64.pack(height), canonical_encode(header), handles["blocks"])
        put(
            _U64.pack(height),
            canonical_encode({"note": checkpoint.note, "public_key": checkpoint.public_key}),
            handles["checkpoints"],
        )
        put(HEAD_KEY, canonical_encode(asdict(head)), handles["meta"])
        self._write(batch)

    def _write(self, batch: WriteBatch) -> None:
        if self.mode != "rw":
            raise SealStoreError(f"seal store at {self.path} is open {self.mode}")
        try:
            self._db.write(batch, self._write_options)
        except Exception as exc:  # rocksdict raises plain Exception for I/O errors
            raise SealStoreError(f"seal write to {self.path} failed: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------------------

    def catch_up(self) -> None:
        """A secondary instance reads what the sealer wrote since."""
        if self.mode == "secondary":
            self._db.try_catch_up_with_primary()

    def close(self) -> None:
        if self._db is None:
            return
        for family in self._families.values():
            family.close()
        self._families = {}
        self._handles = {}
        self._db.close()
        self._db = None


class SealNodeStore:
    """`proofs.core.tree.NodeStore` over a seal store, with an overlay for the open seal.

    The sealer's tree appends into the overlay (and reads it back while computing the new
    root); `take()` hands the new nodes to `SealStore.write_seal`. Readers of sealed sizes
    only ever read nodes already on disk.
    """

    def __init__(self, store: SealStore) -> None:
        self._store = store
        self._pending: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes | None:
        digest = self._pending.get((level, index))
        return digest if digest is not None else self._store.node(level, index)

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        self._pending.update(((level, index), digest) for level, index, digest in items)

    def take(self) -> list[tuple[int, int, bytes]]:
        pending, self._pending = self._pending, {}
        return [(level, index, digest) for (level, index), digest in pending.items()]

    def discard(self) -> None:
        self._pending = {}
