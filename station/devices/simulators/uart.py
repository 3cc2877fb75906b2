"""What a UART set to the wrong baud receives: the lowest seam of a baud mismatch on a pty.

A pseudo-terminal ignores the baud rate, so a mismatch cannot happen there for real. This
replays the line bit by bit instead: 8N1 bytes sent back to back at `sent_baud`, sampled by a
receiver at `read_baud` that oversamples 16 times per bit, finds each start bit on a falling
edge and samples mid-bit, as UARTs do. A byte whose stop bit reads 0 (a framing error) arrives
as 0x00, as Linux delivers it when neither IGNPAR nor PARMRK is set.
"""

from __future__ import annotations

OVERSAMPLE = 16


def line_bits(data: bytes) -> list[int]:
    bits: list[int] = []
    for byte in data:
        bits.append(0)  # start bit
        bits.extend((byte >> i) & 1 for i in range(8))  # LSB first
        bits.append(1)  # stop bit
    return bits


def uart_receive(data: bytes, sent_baud: int, read_baud: int) -> bytes:
    """The bytes a receiver at `read_baud` reads from `data` sent at `sent_baud`."""
    bits = line_bits(data)
    sent_bit = read_baud * OVERSAMPLE / sent_baud  # one sent bit, in receiver sample ticks
    total = int(len(bits) * sent_bit)

    def level(tick: int) -> int:
        index = int(tick / sent_bit)
        return bits[index] if index < len(bits) else 1  # the line idles high

    out = bytearray()
    tick = 0
    while tick < total:
        if level(tick) == 1:
            tick += 1
            continue
        middle = tick + OVERSAMPLE // 2
        if level(middle) == 1:  # a glitch, not a start bit
            tick += 1
            continue
        value = 0
        for i in range(8):
            value |= level(middle + OVERSAMPLE * (i + 1)) << i
        stop = middle + OVERSAMPLE * 9
        out.append(value if level(stop) == 1 else 0x00)
        tick = stop + OVERSAMPLE // 2
    return bytes(out)
