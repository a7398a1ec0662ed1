# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""CIDR validation and normalisation for the blocking steps (``waf_block``, ``nacl_block``).

Pure functions, no AWS: unit-tested in ``tests/unit/test_network.py``.

* ``parse_cidr`` accepts an address or a CIDR (IPv4 or IPv6), clears host bits (``10.0.0.5/24`` is
  ``10.0.0.0/24``), writes IPv6 in its compressed lower-case form and a bare address as ``/32`` or
  ``/128``; anything else raises ``ValueError`` naming the value.
* ``check_blockable`` refuses what must never be blocked by mistake: everything (``0.0.0.0/0``,
  ``::/0``) and any range that overlaps an allow-listed one (the office, the VPN, the VPC's own CIDRs),
  unless forced.
* ``plan_additions`` merges requested CIDRs into an existing list: an address already covered by a
  listed CIDR (or by another requested one) changes nothing; the existing list is never rewritten.
"""

from __future__ import annotations

import ipaddress


def parse_cidr(value) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network for an address or CIDR, host bits cleared. Raises ``ValueError`` naming ``value``."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValueError(f"invalid CIDR {value!r}: empty")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"invalid CIDR {value!r}: {exc}") from None


def normalise_cidr(value) -> str:
    """``10.0.0.0/24`` for ``10.0.0.5/24``; ``2001:db8::/32`` for ``2001:DB8:0::/32``; ``/32`` added."""
    return str(parse_cidr(value))


def normalise_all(values, option="addresses") -> tuple[list[str], dict[str, str]]:
    """``(normalised, changed)`` for a list of CIDRs, duplicates dropped (first kept).

    ``changed`` maps each value given that was rewritten to its normal form (reported to the user).
    Raises ``ValueError`` naming every invalid value (and the option)."""
    normalised, rewritten, invalid, seen = [], {}, [], set()
    for value in values or []:
        try:
            net = parse_cidr(value)
        except ValueError:
            invalid.append(value)
            continue
        text = str(net)
        given = str(value).strip()
        if text not in (given, f"{given}/{net.max_prefixlen}"):  # a bare address gaining /32 is no news
            rewritten[str(value)] = text
        if text not in seen:
            seen.add(text)
            normalised.append(text)
    if invalid:
        shown = ", ".join(repr(v) for v in invalid[:10]) + (
            f" and {len(invalid) - 10} more" if len(invalid) > 10 else ""
        )
        raise ValueError(f"{option}: invalid CIDR {shown}: expected an IPv4 or IPv6 address or CIDR")
    return normalised, rewritten


def version_of(cidr) -> str:
    """``IPV4`` or ``IPV6`` (WAFv2's ``IPAddressVersion`` values)."""
    return "IPV4" if parse_cidr(cidr).version == 4 else "IPV6"


class CoverIndex:
    """Answer "which listed network contains this one?" in O(distinct prefix lengths), not O(n)."""

    def __init__(self, networks=()):
        self._keys = {}
        self._lengths = {4: set(), 6: set()}
        for net in networks:
            self.add(net)

    def add(self, net):
        self._keys.setdefault((net.version, int(net.network_address), net.prefixlen), net)
        self._lengths[net.version].add(net.prefixlen)

    def cover(self, net, strictly_larger=False):
        """The listed network containing ``net`` (the largest one), else None."""
        bits = 32 if net.version == 4 else 128
        address = int(net.network_address)
        for length in sorted(self._lengths[net.version]):
            if length > net.prefixlen or (strictly_larger and length == net.prefixlen):
                break
            mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
            found = self._keys.get((net.version, address & mask, length))
            if found is not None:
                return found
        return None


def covered_by(net, networks):
    """The network of ``networks`` (same IP version) that contains ``net``, else None."""
    return CoverIndex(networks).cover(net)


def check_blockable(cidrs, allow_list=(), force=False) -> list[str]:
    """Refusals (messages naming the value) for blocking ``cidrs``; empty when all may be blocked.

    ``allow_list`` is a list of ``(cidr, why)`` pairs (``why`` says where the range comes from, such as
    ``"allow_list"`` or ``"CIDR of vpc-0123"``). ``force`` lifts every refusal."""
    if force:
        return []
    allowed = [(parse_cidr(cidr), why) for cidr, why in allow_list]
    refusals = []
    for cidr in cidrs:
        net = parse_cidr(cidr)
        if net.prefixlen == 0:
            refusals.append(f"{cidr} would block every {'IPv4' if net.version == 4 else 'IPv6'} address")
            continue
        for other, why in allowed:
            if other.version == net.version and net.overlaps(other):
                refusals.append(f"{cidr} overlaps the allow-listed range {other} ({why})")
                break
    return refusals


def plan_additions(existing, requested) -> dict:
    """What adding ``requested`` (normalised CIDRs) to ``existing`` (as stored) changes.

    Returns ``{"add": [...], "covered": {cidr: covering cidr}}``: ``add`` keeps the request's order and
    leaves out every CIDR contained in an existing entry (compared normalised: the set may store
    ``2001:DB8::1/128``) or in a larger requested CIDR. The existing entries are never rewritten."""
    index = CoverIndex()
    for entry in existing or []:
        try:
            index.add(parse_cidr(entry))
        except ValueError:
            continue  # an entry we cannot parse stays untouched; it covers nothing we know of
    requested_nets = [parse_cidr(cidr) for cidr in requested]
    wanted = CoverIndex(requested_nets)
    add, covered, seen = [], {}, set()
    for net in requested_nets:
        text = str(net)
        if text in seen:
            continue
        seen.add(text)
        cover = index.cover(net) or wanted.cover(net, strictly_larger=True)
        if cover is not None:
            covered[text] = str(cover)
        else:
            add.append(text)
    return {"add": add, "covered": covered}


def plan_removals(existing, recorded) -> dict:
    """What removing the ``recorded`` CIDRs (this incident's) from ``existing`` (as stored) changes.

    Returns ``{"remove": [stored strings], "kept": [stored strings not ours], "missing": [recorded CIDRs
    no longer listed]}``. Comparison is on normalised forms; removal uses the stored spelling."""
    ours = {normalise_cidr(cidr) for cidr in recorded or []}
    remove, kept, present = [], [], set()
    for entry in existing or []:
        try:
            key = normalise_cidr(entry)
        except ValueError:
            kept.append(entry)
            continue
        if key in ours:
            remove.append(entry)
            present.add(key)
        else:
            kept.append(entry)
    missing = sorted(ours - present, key=sort_key)
    return {"remove": remove, "kept": kept, "missing": missing}


def sort_key(cidr):
    """Sort CIDRs IPv4 first, then by address and prefix length."""
    try:
        net = parse_cidr(cidr)
    except ValueError:
        return (9, 0, 0, str(cidr))
    return (net.version, int(net.network_address), net.prefixlen, "")
