"""A client for NSCA, the Nagios Service Check Acceptor, protocol version 3.

Speaks what Debian's nsca daemon (2.9 and later) accepts: the server opens
with a 132-byte packet (a 128-byte IV and a big-endian timestamp); the
client answers with one 720-byte data packet, the size that nsca still
accepts from clients with 512 bytes of plugin output:

    int16 version (3), 2 bytes padding, uint32 CRC32, uint32 timestamp,
    int16 return code, char host[64], char service[128], char output[512],
    2 bytes padding

all big-endian, strings NUL-terminated and NUL-padded. The CRC32 (the
common zlib one) is computed over the packet with its own field zero; the
timestamp is the server's, echoed back. Encryption 0 sends the packet as is;
1 XORs every byte with the IV (cycling over its 128 bytes) and then with the
password (cycling over its bytes), if there is one. The DES family of
methods (2 and above) needs libmcrypt and is not offered.

The server reads until it has a full packet or the client closes, so the
client shuts its side down after sending. nsca answers nothing, not even to
a packet it drops (a wrong password or encryption method fails the CRC
check): such failures show only in the nsca server's syslog.
"""

import socket
import struct
import zlib

import bareosdir_netio

PROTOCOL_VERSION = 3
IV_SIZE = 128
INIT_PACKET = struct.Struct(">128sI")
DATA_PACKET = struct.Struct(">h2xIIh64s128s512s2x")
HOST_SIZE = 64
SERVICE_SIZE = 128
OUTPUT_SIZE = 512

ENCRYPT_NONE = 0
ENCRYPT_XOR = 1
SUPPORTED_ENCRYPTION = (ENCRYPT_NONE, ENCRYPT_XOR)

# Nagios return codes.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


def fit(text, size):
    """`text` as UTF-8 that fits a NUL-terminated field of `size` bytes.

    Cut at a character boundary, never inside a multi-byte sequence. A line
    break becomes a space: nsca 2.10 escapes line breaks itself, but older
    versions write them raw into the monitoring core's command file, where
    the rest of the text would be read as another command. NUL would end
    the string early and is dropped.
    """
    text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    data = text.replace("\0", "").encode("utf-8")
    if len(data) > size - 1:
        data = data[:size - 1].decode("utf-8", "ignore").encode("utf-8")
    return data


def xor(data, iv, password):
    """nsca's method 1: XOR with the IV, then with the password."""
    out = bytearray(data)
    for i in range(len(out)):
        out[i] ^= iv[i % len(iv)]
    if password:
        for i in range(len(out)):
            out[i] ^= password[i % len(password)]
    return bytes(out)


def build_packet(timestamp, return_code, host, service, output):
    """The clear-text data packet, its CRC32 filled in."""
    fields = (PROTOCOL_VERSION, 0, timestamp, return_code,
              fit(host, HOST_SIZE), fit(service, SERVICE_SIZE),
              fit(output, OUTPUT_SIZE))
    crc = zlib.crc32(DATA_PACKET.pack(*fields)) & 0xFFFFFFFF
    return DATA_PACKET.pack(fields[0], crc, *fields[2:])


def encrypt(packet, method, iv, password):
    if method == ENCRYPT_NONE:
        return packet
    if method == ENCRYPT_XOR:
        return xor(packet, iv, password)
    raise ValueError("NSCA encryption method %r is not supported "
                     "(0 = none and 1 = XOR are)" % (method,))


def send_service_check(server, port, host, service, return_code, output,
                       encryption=ENCRYPT_XOR, password=None, timeout=10.0):
    """Submit one passive service check result to an nsca server.

    `password` is str or bytes (UTF-8 when str). Raises OSError (including
    socket.timeout) for network trouble, ValueError for a bad argument; the
    whole exchange takes at most `timeout` seconds (plus name resolution).
    """
    if encryption not in SUPPORTED_ENCRYPTION:
        raise ValueError("NSCA encryption method %r is not supported "
                         "(0 = none and 1 = XOR are)" % (encryption,))
    if isinstance(password, str):
        password = password.encode("utf-8")
    if not -32768 <= return_code <= 32767:
        raise ValueError("return code %r out of range" % (return_code,))
    deadline = bareosdir_netio.Deadline(timeout)
    sock = bareosdir_netio.connect(server, port, deadline)
    try:
        init = bareosdir_netio.recv_exact(sock, INIT_PACKET.size, deadline)
        iv, timestamp = INIT_PACKET.unpack(init)
        packet = build_packet(timestamp, return_code, host, service, output)
        bareosdir_netio.send_all(
            sock, encrypt(packet, encryption, iv, password), deadline)
        # nsca reads until it has a full-size packet or sees the end of
        # the stream; it never answers, so there is nothing to wait for.
        sock.shutdown(socket.SHUT_WR)
    finally:
        sock.close()
