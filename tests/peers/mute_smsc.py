"""A deliberately broken SMSC on a plain socket: it binds, then never answers submit_sm, or hangs up on it."""

from __future__ import annotations

import socket
import struct
import threading


class MuteSmsc:
    """Answers bind_transceiver and enquire_link (SMPP v3.4 §4.1.6, §4.11.2), then ignores or cuts submit_sm."""

    def __init__(self, *, on_submit: str) -> None:
        self.on_submit = on_submit  # "ignore" or "hang up"
        self.host = "127.0.0.1"
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        self.submits = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while True:
                header = connection.recv(16, socket.MSG_WAITALL)
                if len(header) < 16:
                    return
                length, command_id, _status, sequence = struct.unpack(">LLLL", header)
                if length > 16:
                    connection.recv(length - 16, socket.MSG_WAITALL)
                if command_id == 0x00000009:  # bind_transceiver -> bind_transceiver_resp with system_id
                    body = b"MUTE\x00"
                    connection.sendall(struct.pack(">LLLL", 16 + len(body), 0x80000009, 0, sequence) + body)
                elif command_id == 0x00000015:  # enquire_link
                    connection.sendall(struct.pack(">LLLL", 16, 0x80000015, 0, sequence))
                elif command_id == 0x00000004:  # submit_sm
                    self.submits += 1
                    if self.on_submit == "hang up":
                        return

    def close(self) -> None:
        self.listener.close()
