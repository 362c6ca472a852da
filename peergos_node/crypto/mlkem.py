"""ML-KEM-1024 (FIPS 203) in pure Python, key-format compatible with Peergos (spec/peergos.md §1.3).

Why not only `cryptography`: Peergos stores an ML-KEM secret key as the FIPS 203 **expanded**
decapsulation key (3168 bytes, `dk = dk_PKE || ek || H(ek) || z`), which is what its Java (and JS)
implementations produce and accept. `cryptography` can only import and export the 64-byte seed form, so
it can neither read a key a Java client created nor write one a Java client could use. This module
implements the three FIPS 203 internal algorithms we need, with every random input passed in by the
caller (so hybrid boxing can draw them from an injectable `Rng`):

- `keygen(d, z)`        ML-KEM.KeyGen_internal (Alg. 16): ek (1568 bytes), expanded dk (3168 bytes)
- `encapsulate(ek, m)`  ML-KEM.Encaps_internal (Alg. 17): shared secret (32), ciphertext (1568)
- `decapsulate(dk, c)`  ML-KEM.Decaps_internal (Alg. 18), with implicit rejection

plus the input checks of FIPS 203 §7.2/§7.3 (`check_encapsulation_key` modulus check,
`check_decapsulation_key` hash check, ciphertext length). The test suite cross-checks every algorithm
against OpenSSL through `cryptography` (same public key from the same seed `d || z`; each side
decapsulates what the other encapsulated; identical implicit-rejection keys for tampered ciphertexts).

Parameters (ML-KEM-1024): n = 256, q = 3329, k = 4, eta1 = eta2 = 2, du = 11, dv = 5. Polynomials are
lists of 256 ints in [0, q). Pure Python is a few milliseconds per operation here — fine for the rare
operations that use it (follow requests, login) — and Python integers are not constant-time; the
secret-dependent work happens on the key owner's own machine.
"""

from __future__ import annotations

import hashlib

from nabu_py.errors import DecodeError

Q = 3329
N = 256
K = 4
ETA1 = 2
ETA2 = 2
DU = 11
DV = 5

ENCAPSULATION_KEY_BYTES = 384 * K + 32  # 1568
DECAPSULATION_KEY_BYTES = 768 * K + 96  # 3168
CIPHERTEXT_BYTES = 32 * (DU * K + DV)  # 1568
SHARED_SECRET_BYTES = 32
SEED_BYTES = 32

Poly = list[int]


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


_ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]
_GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]
_INV_128 = 3303  # 128^-1 mod q
# CBD with eta = 2 consumes 4 bits per coefficient: (b0 + b1) - (b2 + b3) mod q, per nibble.
_CBD2 = [((n & 1) + ((n >> 1) & 1) - ((n >> 2) & 1) - ((n >> 3) & 1)) % Q for n in range(16)]


# ---- hash functions (FIPS 203 §4.1) -------------------------------------------------------------
def _g(data: bytes) -> tuple[bytes, bytes]:
    h = hashlib.sha3_512(data).digest()
    return h[:32], h[32:]


def _h(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def _j(data: bytes) -> bytes:
    return hashlib.shake_256(data).digest(32)


def _prf_eta2(seed: bytes, counter: int) -> bytes:
    return hashlib.shake_256(seed + bytes((counter,))).digest(64 * 2)


# ---- sampling (Alg. 7, 8) --------------------------------------------------------------------------
def _sample_ntt(seed34: bytes) -> Poly:
    """Rejection-sample a polynomial in NTT form from SHAKE128(seed34)."""
    length = 840  # 5 SHAKE128 blocks; needing more happens with negligible probability
    while True:
        buf = hashlib.shake_128(seed34).digest(length)
        out: Poly = []
        append = out.append
        for i in range(0, length, 3):
            c1 = buf[i + 1]
            d1 = buf[i] | ((c1 & 15) << 8)
            d2 = (c1 >> 4) | (buf[i + 2] << 4)
            if d1 < Q:
                append(d1)
                if len(out) == N:
                    return out
            if d2 < Q:
                append(d2)
                if len(out) == N:
                    return out
        length *= 2


def _cbd2(data: bytes) -> Poly:
    table = _CBD2
    out: Poly = []
    for byte in data:
        out.append(table[byte & 15])
        out.append(table[byte >> 4])
    return out


# ---- NTT (Alg. 9-12) ---------------------------------------------------------------------------------
def _ntt(poly: Poly) -> Poly:
    f = list(poly)
    zetas = _ZETAS
    k = 1
    length = 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta = zetas[k]
            k += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                fj = f[j]
                f[j + length] = (fj - t) % Q
                f[j] = (fj + t) % Q
        length >>= 1
    return f


def _intt(poly: Poly) -> Poly:
    f = list(poly)
    zetas = _ZETAS
    k = 127
    length = 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta = zetas[k]
            k -= 1
            for j in range(start, start + length):
                t = f[j]
                u = f[j + length]
                f[j] = (t + u) % Q
                f[j + length] = zeta * (u - t) % Q
        length <<= 1
    return [x * _INV_128 % Q for x in f]


def _dot_ntt(a: list[Poly], b: list[Poly]) -> Poly:
    """sum_i a[i] * b[i] in the NTT domain (MultiplyNTTs of Alg. 11/12, accumulated, reduced once)."""
    acc = [0] * N
    gammas = _GAMMAS
    for f, g in zip(a, b, strict=True):
        for i in range(128):
            a0 = f[2 * i]
            a1 = f[2 * i + 1]
            b0 = g[2 * i]
            b1 = g[2 * i + 1]
            acc[2 * i] += a0 * b0 + a1 * b1 % Q * gammas[i]
            acc[2 * i + 1] += a0 * b1 + a1 * b0
    return [x % Q for x in acc]


# ---- encoding and compression (Alg. 5, 6; §4.2.1) ---------------------------------------------------
def _encode12(f: Poly) -> bytes:
    out = bytearray(384)
    for i in range(128):
        a = f[2 * i]
        b = f[2 * i + 1]
        out[3 * i] = a & 0xFF
        out[3 * i + 1] = (a >> 8) | ((b & 15) << 4)
        out[3 * i + 2] = b >> 4
    return bytes(out)


def _decode12(data: bytes) -> Poly:
    out: Poly = []
    for i in range(0, 384, 3):
        b1 = data[i + 1]
        out.append((data[i] | ((b1 & 15) << 8)) % Q)
        out.append(((b1 >> 4) | (data[i + 2] << 4)) % Q)
    return out


def _encode_bits(f: Poly, d: int) -> bytes:
    value = 0
    for c in reversed(f):
        value = (value << d) | c
    return value.to_bytes(32 * d, "little")


def _decode_bits(data: bytes, d: int) -> Poly:
    value = int.from_bytes(data, "little")
    mask = (1 << d) - 1
    return [(value >> (d * i)) & mask for i in range(N)]


def _compress(f: Poly, d: int) -> Poly:
    mask = (1 << d) - 1
    half = Q // 2
    return [(((x << d) + half) // Q) & mask for x in f]


def _decompress(f: Poly, d: int) -> Poly:
    half = 1 << (d - 1)
    return [(y * Q + half) >> d for y in f]


# ---- K-PKE (Alg. 13-15) ---------------------------------------------------------------------------------
def _matrix(rho: bytes) -> list[list[Poly]]:
    """A_hat[i][j] = SampleNTT(rho || j || i)."""
    return [[_sample_ntt(rho + bytes((j, i))) for j in range(K)] for i in range(K)]


def _pke_keygen(d: bytes) -> tuple[bytes, bytes]:
    rho, sigma = _g(d + bytes((K,)))
    a_hat = _matrix(rho)
    s_hat = [_ntt(_cbd2(_prf_eta2(sigma, n))) for n in range(K)]
    e_hat = [_ntt(_cbd2(_prf_eta2(sigma, K + n))) for n in range(K)]
    t_hat = [
        [(x + y) % Q for x, y in zip(_dot_ntt(a_hat[i], s_hat), e_hat[i], strict=True)] for i in range(K)
    ]
    ek = b"".join(_encode12(t) for t in t_hat) + rho
    dk = b"".join(_encode12(s) for s in s_hat)
    return ek, dk


def _pke_encrypt(ek: bytes, m: bytes, r: bytes) -> bytes:
    t_hat = [_decode12(ek[384 * i : 384 * (i + 1)]) for i in range(K)]
    rho = ek[384 * K :]
    a_hat = _matrix(rho)
    y_hat = [_ntt(_cbd2(_prf_eta2(r, n))) for n in range(K)]
    e1 = [_cbd2(_prf_eta2(r, K + n)) for n in range(K)]
    e2 = _cbd2(_prf_eta2(r, 2 * K))
    c1 = b""
    for i in range(K):
        column = [a_hat[j][i] for j in range(K)]  # A transposed
        u = [(x + y) % Q for x, y in zip(_intt(_dot_ntt(column, y_hat)), e1[i], strict=True)]
        c1 += _encode_bits(_compress(u, DU), DU)
    mu = _decompress(_decode_bits(m, 1), 1)
    v_ntt = _intt(_dot_ntt(t_hat, y_hat))
    v = [(a + b + c) % Q for a, b, c in zip(v_ntt, e2, mu, strict=True)]
    return c1 + _encode_bits(_compress(v, DV), DV)


def _pke_decrypt(dk_pke: bytes, c: bytes) -> bytes:
    c1_len = 32 * DU
    u_hat = [_ntt(_decompress(_decode_bits(c[c1_len * i : c1_len * (i + 1)], DU), DU)) for i in range(K)]
    v = _decompress(_decode_bits(c[c1_len * K :], DV), DV)
    s_hat = [_decode12(dk_pke[384 * i : 384 * (i + 1)]) for i in range(K)]
    su = _intt(_dot_ntt(s_hat, u_hat))
    w = [(a - b) % Q for a, b in zip(v, su, strict=True)]
    return _encode_bits(_compress(w, 1), 1)


# ---- input checks (§7.2, §7.3) -------------------------------------------------------------------------
def check_encapsulation_key(ek: bytes) -> None:
    """FIPS 203 encapsulation-key check: length and modulus; DecodeError if it fails."""
    if type(ek) is not bytes or len(ek) != ENCAPSULATION_KEY_BYTES:
        raise DecodeError(f"an ML-KEM-1024 encapsulation key is {ENCAPSULATION_KEY_BYTES} bytes")
    for i in range(K):
        chunk = ek[384 * i : 384 * (i + 1)]
        if _encode12(_decode12(chunk)) != chunk:
            raise DecodeError("ML-KEM encapsulation key has a coefficient outside [0, q)")


def check_decapsulation_key(dk: bytes) -> None:
    """FIPS 203 decapsulation-key check: length and the embedded H(ek); DecodeError if it fails."""
    if type(dk) is not bytes or len(dk) != DECAPSULATION_KEY_BYTES:
        raise DecodeError(f"an ML-KEM-1024 decapsulation key is {DECAPSULATION_KEY_BYTES} bytes")
    ek = dk[384 * K : 768 * K + 32]
    if _h(ek) != dk[768 * K + 32 : 768 * K + 64]:
        raise DecodeError("ML-KEM decapsulation key fails its hash check")


def encapsulation_key_of(dk: bytes) -> bytes:
    """The encapsulation (public) key embedded in an expanded decapsulation key."""
    check_decapsulation_key(dk)
    return dk[384 * K : 768 * K + 32]


# ---- ML-KEM (Alg. 16-18) -------------------------------------------------------------------------------
def keygen(d: bytes, z: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.KeyGen_internal: (encapsulation key, expanded decapsulation key) from seeds d and z."""
    if len(d) != SEED_BYTES or len(z) != SEED_BYTES:
        raise ValueError("ML-KEM key generation takes two 32-byte seeds")
    ek, dk_pke = _pke_keygen(bytes(d))
    return ek, dk_pke + ek + _h(ek) + bytes(z)


def encapsulate(ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps_internal: (shared secret, ciphertext) for the 32 random bytes `m`."""
    if len(m) != SEED_BYTES:
        raise ValueError("ML-KEM encapsulation takes 32 random bytes")
    check_encapsulation_key(ek)
    shared, r = _g(bytes(m) + _h(ek))
    return shared, _pke_encrypt(ek, bytes(m), r)


def decapsulate(dk: bytes, c: bytes) -> bytes:
    """ML-KEM.Decaps_internal: the shared secret (a pseudorandom one if `c` was tampered with)."""
    check_decapsulation_key(dk)
    if type(c) is not bytes or len(c) != CIPHERTEXT_BYTES:
        raise DecodeError(f"an ML-KEM-1024 ciphertext is {CIPHERTEXT_BYTES} bytes")
    dk_pke = dk[: 384 * K]
    ek = dk[384 * K : 768 * K + 32]
    h = dk[768 * K + 32 : 768 * K + 64]
    z = dk[768 * K + 64 :]
    m_prime = _pke_decrypt(dk_pke, c)
    shared, r_prime = _g(m_prime + h)
    rejected = _j(z + c)
    c_prime = _pke_encrypt(ek, m_prime, r_prime)
    # Select without branching on secret data more than Python forces us to.
    diff = 0
    for x, y in zip(c, c_prime, strict=True):
        diff |= x ^ y
    mask = -(diff != 0) & 0xFF  # 0xFF if the ciphertexts differ
    return bytes(s ^ ((s ^ j) & mask) for s, j in zip(shared, rejected, strict=True))


__all__ = [
    "CIPHERTEXT_BYTES",
    "DECAPSULATION_KEY_BYTES",
    "ENCAPSULATION_KEY_BYTES",
    "SEED_BYTES",
    "SHARED_SECRET_BYTES",
    "check_decapsulation_key",
    "check_encapsulation_key",
    "decapsulate",
    "encapsulate",
    "encapsulation_key_of",
    "keygen",
]
