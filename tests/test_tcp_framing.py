"""The TCP sender's batch framing (RFC 6587 §3.4.1 octet counting, §3.4.2 LF trailer): however a batch
is framed (the ASCII fast path, the UTF-8 path, message by message) and however its frames are cut into
chunks, the bytes are the frames of the messages in order, and the frame ends read back from a chunk
are the real ones. Then the same end to end, through every queueing path, to a real receiver."""

from __future__ import annotations

import threading
from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siemfmt.testing import ReceiverFactory
from siemfmt.transport import TCPSender, TransportError, connect
from siemfmt.transport._tcp import CHUNK_BYTES, _Chunk, frame_ends, frame_texts
from tests.conftest import closed_port
from tests.tls_pki import PKI

ascii_text = st.text(st.characters(min_codepoint=1, max_codepoint=127, exclude_characters="\n"), min_size=1)
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1)
messages = st.lists(st.one_of(ascii_text, any_text, any_text.map(str.encode)), min_size=1, max_size=60)


def frame(message: str | bytes, octets: bool) -> bytes:
    """One frame, written the obvious way."""
    data = message.encode() if isinstance(message, str) else message
    return b"%d %s" % (len(data), data) if octets else data + b"\n"


def sender(framing: str, **options: object) -> TCPSender:
    tx = connect(f"tcp://127.0.0.1:{closed_port()}", framing=framing, **options)
    assert isinstance(tx, TCPSender)
    return tx


@pytest.mark.parametrize("framing", ["octet-counting", "lf"])
@given(items=messages, size=st.sampled_from([40, 300, CHUNK_BYTES]))
def test_batch_frames_are_the_messages_frames_in_order(framing: str, items: list[str | bytes], size: int) -> None:
    octets = framing == "octet-counting"
    tx = sender(framing, max_batch_bytes=size)
    try:
        chunks = tx._frame_batch(list(items))
    finally:
        tx.close()
    expected = [frame(m, octets) for m in items]
    assert b"".join(bytes(c.data) for c in chunks) == b"".join(expected)
    assert sum(c.count for c in chunks) == len(items)
    at = 0
    for c in chunks:
        sizes = [len(f) for f in expected[at : at + c.count]]
        assert frame_ends(c.data, octets) == list(accumulate(sizes))
        assert c.ends is None or c.ends == list(accumulate(sizes))
        at += c.count


@pytest.mark.parametrize("octets", [True, False])
@given(texts=st.lists(ascii_text, min_size=1, max_size=60))
def test_text_chunk_frames_like_single_messages(octets: bool, texts: list[str]) -> None:
    chunk = _Chunk(b"", 0, texts=list(texts)).framed(octets)
    assert chunk.count == len(texts) and chunk.texts is None
    assert chunk.data == b"".join(frame(t, octets) for t in texts)
    assert frame_texts(texts, [len(t) for t in texts] if octets else None) == chunk.data


def test_big_batches_are_cut_into_chunks_of_about_chunk_bytes() -> None:
    tx = sender("octet-counting")
    try:
        chunks = tx._frame_batch(["x" * 430] * 1000)
    finally:
        tx.close()
    assert len(chunks) > 1
    assert all(len(c.data) <= CHUNK_BYTES for c in chunks)


@pytest.mark.parametrize("framing", ["octet-counting", "lf"])
def test_every_queueing_path_keeps_order_and_bytes(make_receiver: ReceiverFactory, framing: str) -> None:
    """ASCII text (queued unframed), UTF-8 text and bytes (framed at once), batches of each and mixed,
    interleaved: the receiver gets every message, in order, byte for byte."""
    rx = make_receiver("tcp", framing=framing, parse=False)
    sent: list[str | bytes] = []
    with connect(rx.url, framing=framing, max_batch_bytes=4096) as tx:
        for i in range(300):
            kind = i % 6
            if kind == 0:
                one: list[str | bytes] = [f"ascii {i}"]
            elif kind == 1:
                one = [f"κόσμε {i}"]
            elif kind == 2:
                one = [f"bytes {i}".encode()]
            elif kind == 3:
                one = [f"batch {i}.{j}" for j in range(50)]
            elif kind == 4:
                one = [f"mixed {i}", f"gemischt ä {i}", b"raw %d" % i]
            else:
                one = [f"long {i} " + "y" * 3000]
            if len(one) == 1 and kind != 5:
                tx.send(one[0])
            else:
                tx.send_many(one)
            sent += one
        assert tx.flush(10)
        got = rx.wait_for(len(sent))
        stats = tx.stats
    assert [r.raw for r in got] == [m.encode() if isinstance(m, str) else m for m in sent]
    assert stats.sent == len(sent) and stats.bytes == sum(len(frame(m, framing != "lf")) for m in sent)


def test_threads_on_every_path_with_a_small_queue_keep_their_order(make_receiver: ReceiverFactory) -> None:
    """Four threads send through the lock-free path, the framed path and ``send_many`` at once, into a
    queue so small that they block for room all the time: every message arrives once, and each
    thread's in its own order."""
    rx = make_receiver("tcp", framing="octet-counting", parse=False)
    per_thread = 3000

    def messages(n: int) -> list[str | bytes]:
        out: list[str | bytes] = []
        for i in range(per_thread):
            kind = i % 3
            out.append(f"t{n} {i} ascii" if kind == 0 else f"t{n} {i} ä" if kind == 1 else b"t%d %d bytes" % (n, i))
        return out

    with connect(rx.url, framing="octet-counting", max_queue=200, max_batch_bytes=2048) as tx:

        def worker(n: int) -> None:
            mine = messages(n)
            i = 0
            while i < len(mine):
                if i % 100 == 50:
                    tx.send_many(mine[i : i + 25])
                    i += 25
                else:
                    tx.send(mine[i])
                    i += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert tx.flush(10)
        got = [r.raw for r in rx.wait_for(4 * per_thread, timeout=20)]
        stats = tx.stats
    assert stats.sent == 4 * per_thread and stats.dropped == 0
    for n in range(4):
        mine = [raw for raw in got if raw.startswith(b"t%d " % n)]
        assert mine == [m.encode() if isinstance(m, str) else m for m in messages(n)]


# --- found in review ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_a_message_larger_than_a_write_then_a_small_one(
    make_receiver: ReceiverFactory, request: pytest.FixtureRequest, scheme: str
) -> None:
    """A frame bigger than ``max_batch_bytes`` is written alone; the chunk it ended must not stay queued
    empty (TLS, which writes chunk by chunk, span on an empty write for ever)."""
    options: dict[str, object] = {"framing": "octet-counting", "max_batch_bytes": 4096}
    if scheme == "tls":
        pki: PKI = request.getfixturevalue("pki")
        rx = make_receiver("tls", certfile=str(pki.server_cert), keyfile=str(pki.server_key), parse=False)
        options["ca_file"] = str(pki.ca)
    else:
        rx = make_receiver("tcp", framing="octet-counting", parse=False)
    big, small = b"B" * 6000, b"small"
    with connect(rx.url, **options) as tx:
        tx.send_many([b"first", big])  # one chunk whose last frame is over the write size
        tx.send(small)
        assert tx.flush(5)
        got = [r.raw for r in rx.wait_for(3)]
        stats = tx.stats
    assert got == [b"first", big, small]
    assert stats.sent == 3


def test_a_send_that_races_close_raises_only_for_a_message_close_did_not_see() -> None:
    """``send`` appends without the lock; if ``close`` ran in between, the message is either still in
    the list (taken back, not counted, the caller gets the error) or gone (written or counted as
    dropped by ``close``, and the call returns normally): never both, never neither."""
    tx = sender("octet-counting")
    tx.close()
    assert tx._closed
    late = "late message"
    tx._texts.append(late)  # what the racing send had appended after close counted what was left
    with pytest.raises(TransportError, match="closed"):
        tx._appended(late)
    assert tx._texts == [] and tx.stats.dropped == 0
    tx._appended("counted by close already")  # gone from the list: no error
    assert tx.stats.dropped == 0
