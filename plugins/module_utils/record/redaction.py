# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction for the incident timeline: no secret reaches the record, whatever its shape.

Two passes over everything a task brings (its arguments and its result):

1. ``find_secrets`` collects every value known to be secret: values under secret-looking keys
   (``password``, ``pwd``, ``credentials``, ``ssh_key``, ``SessionToken``...), the value of a name/value
   pair whose name looks secret (ECS and Kubernetes ``env`` lists, CloudFormation ``Parameters``, SSM
   parameters, and any SSM ``SecureString``), the password of a URL's userinfo
   (``scheme://user:pass@host``), the body of a PEM private-key block, the value after a secret flag on a
   command line (``--password x``, ``--token=x``, ``mysql -px``, ``sshpass -p x``, ``curl -u user:x``)
   and ``key=value`` secrets in free text.
2. ``to_plain`` / ``scrub_text`` mask those values wherever they appear in the record (name, message,
   details: a password given as a module argument and echoed in ``stdout`` is masked there too), and
   mask the shapes themselves wherever they appear.

Standard library only (the callback, the action plugins and the tests share it).
"""

from __future__ import annotations

import datetime
import functools
import math
import re

MASK = "********"
NO_LOG_DETAILS = {"censored": "no_log: true was set for this task; its arguments and result are not recorded"}

# Words that make a key look secret, found anywhere in the key lower-cased with every non-alphanumeric
# character removed (so ``aws_secret_access_key``, ``SecretAccessKey``, ``x-auth-token`` and
# ``Private Key`` all match).
SECRET_KEY_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "privatekey",
    "sshkey",
    "accesskeysecret",
    "session",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "connectionstring",
    "webhookurl",
)
# Short words that make a key secret only as a whole word of the key (``db_pass``, ``MYSQL_PWD``,
# ``dbPass``), never inside another word (``bypass``, ``passive``, ``compass``).
SECRET_KEY_TOKENS = frozenset(("pass", "pwd", "pw", "psk", "passwd", "pword"))
# Keys that contain a secret word but name or describe the secret rather than hold it; a responder
# needs to see WHICH key, secret or session was acted on.  Matched against the end of the normalised
# key.  ``AccessKeyId`` never contains a secret word, so it is never masked.
SAFE_KEY_SUFFIXES = (
    "id",
    "ids",
    "arn",
    "arns",
    "name",
    "names",
    "time",
    "date",
    "expiration",
    "expiry",
    "count",
    "length",
    "type",
    "enabled",
    "versionstage",
    "versionstages",
    "rotationrules",
    "policy",
    "duration",
    "durationseconds",
    "lastused",
    "required",
    "status",
    "source",
    "file",
    "path",
)
# "credential" on its own words a key that holds a credential only when the key ends in it (``credentials``,
# ``aws_credential``) or goes on to the credential's value (``credential_value``, ``credentials_json``).  Keys
# that use it as a qualifier hold identifiers: ``credential_compromise_user`` (the credential_compromise
# scenario's variables), ``compromised_credential_principal_arn``, ``credential_kind``.  Such a key is judged
# by its other words only (``credential_compromise_webhook_url`` and ``credential_compromise_new_password``
# stay secret).
CREDENTIAL_VALUE_WORDS = frozenset(
    ("value", "values", "data", "json", "string", "body", "blob", "key", "keys", "material", "content", "text", "pair")
)
_CREDENTIAL_WORD = re.compile(r"^credentials?$")
# ... except these, which are secrets whatever their suffix says.
ALWAYS_SECRET_KEYS = frozenset(("sessionid", "sessiontoken", "tokenid", "sessioncookie"))
# Values that are never masked as "known secrets" inside text (they would blank half the record).
_TRIVIAL_VALUES = frozenset(
    ("true", "false", "none", "null", "yes", "no", "on", "off", "present", "absent", "changeme", MASK.lower())
)
# Ansible's own placeholder for a no_log module parameter.
_NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
MIN_SECRET_LENGTH = 3

_NORMALISE = re.compile(r"[^a-z0-9]")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SAFE_SUFFIX_NAMES = frozenset(SAFE_KEY_SUFFIXES)


def _normalise_key(key):
    return _NORMALISE.sub("", str(key).lower())


def _key_text(key):
    return str.__str__(key) if isinstance(key, str) else str(key)


def is_secret_key(key):
    """True when the values under ``key`` must be masked."""
    return _is_secret_key(_key_text(key))


# Keys repeat across a result (every principal, every object has the same keys): decide each once.
@functools.lru_cache(maxsize=8192)
def _is_secret_key(key):
    norm = _normalise_key(key)
    if not norm:
        return False
    if norm in ALWAYS_SECRET_KEYS:
        return True
    ordered = [w.lower() for w in _WORDS.findall(str(key))]
    words = set(ordered)
    if _credential_as_qualifier(ordered):
        norm = "".join(w for w in ordered if not _CREDENTIAL_WORD.match(w))
    if not any(word in norm for word in SECRET_KEY_WORDS) and not words & SECRET_KEY_TOKENS:
        return False
    # names and descriptions of a secret stay visible: SecretId, SecretArn, RoleSessionName, TokenIssueTime
    return not any(norm.endswith(suffix) and norm != suffix for suffix in _SAFE_SUFFIX_NAMES)


def _credential_as_qualifier(words):
    """True when every ``credential`` word of the key qualifies a following word that is not the credential's
    value (``credential_compromise_user``), rather than ending the key or going on to its value."""
    found = False
    for i, word in enumerate(words):
        if _CREDENTIAL_WORD.match(word):
            if i + 1 >= len(words) or words[i + 1] in CREDENTIAL_VALUE_WORDS:
                return False
            found = True
    return found


def _is_safe_key(key):
    return _is_safe_key_text(_key_text(key))


@functools.lru_cache(maxsize=8192)
def _is_safe_key_text(key):
    norm = _normalise_key(key)
    return bool(norm) and norm not in ALWAYS_SECRET_KEYS and any(norm.endswith(s) for s in _SAFE_SUFFIX_NAMES)


# --------------------------------------------------------------------------------------------------
# Shapes in free text
# --------------------------------------------------------------------------------------------------

# A PEM private key (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK), complete or cut off.
_PEM = re.compile(
    r"(?s)(-----BEGIN (?P<label>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----)(?P<body>.*?)"
    r"(?P<end>-----END (?P=label)-----|\Z)"
)
# userinfo of a URL: scheme://user:password@host
_URL_USERINFO = re.compile(r"(?i)(?P<head>\b[a-z][a-z0-9+.\-]{1,30}://[^\s:/?#@\"']*:)(?P<value>[^\s/?#@\"']+)(?=@)")
# ``password=hunter2``, ``"token": "abc"``, ``SecretAccessKey: abc``, ``Authorization: Bearer abc``.
# Linear time on long text: a key starts at a word boundary (lookbehind), has at most 64 characters
# around the secret word, and the trailing part never backtracks (possessive quantifier).
_TEXT_SECRET = re.compile(
    r"""(?ix)
    (?P<key>["']?(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]{0,64}
        (?:password|passwd|passphrase|secret|token|private[_\-\s]?key|ssh[_\-]?key|session|api[_\-]?key
           |authorization|credentials?|cookie|pass|pwd)
        [A-Za-z0-9_.\-]{0,64}+["']?)
    (?P<sep>\s*[:=]\s*|\s+)
    (?P<quote>["']?)
    (?P<value>(?:bearer\s+|basic\s+|token\s+)?[^\s"',;}\]]+)
    """
)
# Command lines: a value after a secret-looking flag (``--password x``, ``--db-pass=x``).
_CLI_FLAG = re.compile(
    r"""(?<![^\s"'=(\[,])(?P<flag>--?[A-Za-z][A-Za-z0-9_\-]{0,63})(?P<sep>=|\s+)(?P<quote>["']?)(?P<value>[^\s"']+)"""
)
# Programs whose short flags carry a password: ``mysql -px`` / ``-p x``, ``sshpass -p x``,
# ``redis-cli -a x``, ``curl -u user:x``.
_PROGRAM_FLAGS = (
    (re.compile(r"\b(?:mysql\w*|mariadb\w*)\b"), re.compile(r"(?<!\S)(?P<flag>-p)(?P<sep>)(?P<value>[^\s\"']+)")),
    (re.compile(r"\bsshpass\b"), re.compile(r"(?<!\S)(?P<flag>-p)(?P<sep>\s*)(?P<value>[^\s\"']+)")),
    (re.compile(r"\bredis-cli\b"), re.compile(r"(?<!\S)(?P<flag>-a)(?P<sep>\s+)(?P<value>[^\s\"']+)")),
)
_USER_PASS_FLAG = re.compile(r"(?<!\S)(?P<flag>-u|--user)(?P<sep>\s+|=)(?P<user>[^\s:\"']+):(?P<value>[^\s\"']+)")


# Every key _TEXT_SECRET can match contains one of these: text without any holds no ``key: value`` secret.
_TEXT_SECRET_HINT = re.compile(r"(?i)pass|pwd|secret|token|private|ssh|session|api|authorization|credential|cookie")


def _text_secret_value(match):
    """The secret value of a ``key: value`` match, or None when it is not one."""
    key = match.group("key").strip("\"'")
    if not is_secret_key(key):
        return None
    sep = match.group("sep")
    value = match.group("value")
    if key.startswith("-"):
        return value  # a command-line flag: --password value
    # "token abc" is too loose to act on unless the value looks like a credential
    if not sep.strip() and not match.group("quote") and (len(value) < 16 or value.isalpha()):
        return None
    return value


def _mask_text_match(match):
    if _text_secret_value(match) is None:
        return match.group(0)
    return match.group("key") + match.group("sep") + match.group("quote") + MASK


def _mask_flag(match):
    flag = match.group("flag")
    if not is_secret_key(flag.lstrip("-")):
        return match.group(0)
    return flag + match.group("sep") + match.group("quote") + MASK


def _find_in_text(text, out):
    """Add the secrets found by shape in ``text`` to ``out``."""
    if "PRIVATE KEY" in text:
        for m in _PEM.finditer(text):
            body = m.group("body")
            for line in re.split(r"\\n|\s+", body):
                if len(line) >= 16:
                    out.add(line)
    if "://" in text:
        for m in _URL_USERINFO.finditer(text):
            out.add(m.group("value"))
    if _TEXT_SECRET_HINT.search(text):
        for m in _TEXT_SECRET.finditer(text):
            value = _text_secret_value(m)
            if value:
                out.add(re.sub(r"(?i)^(?:bearer|basic|token)\s+", "", value))
    if "-" in text:
        for m in _CLI_FLAG.finditer(text):
            if is_secret_key(m.group("flag").lstrip("-")):
                out.add(m.group("value"))
        for program, flag in _PROGRAM_FLAGS:
            if program.search(text):
                out.update(m.group("value") for m in flag.finditer(text))
        for m in _USER_PASS_FLAG.finditer(text):
            out.add(m.group("value"))


def scrub_text(text, secrets=()):
    """Mask known secret values and every secret shape inside free text."""
    if not text:
        return text
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    if "PRIVATE KEY" in text:
        text = _PEM.sub(lambda m: m.group(1) + MASK + (m.group("end") or ""), text)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)
    if _TEXT_SECRET_HINT.search(text):
        text = _TEXT_SECRET.sub(_mask_text_match, text)
    if "-" in text:
        text = _CLI_FLAG.sub(_mask_flag, text)
        for program, flag in _PROGRAM_FLAGS:
            if program.search(text):
                text = flag.sub(lambda m: m.group("flag") + m.group("sep") + MASK, text)
        text = _USER_PASS_FLAG.sub(lambda m: m.group("flag") + m.group("sep") + m.group("user") + ":" + MASK, text)
    return text


# --------------------------------------------------------------------------------------------------
# Structures: secret keys, name/value pairs, argv lists
# --------------------------------------------------------------------------------------------------

# name/value pairs: ECS and Kubernetes env (name/value), CloudFormation (ParameterKey/ParameterValue),
# SSM (Name/Value), tags (Key/Value), option settings (OptionName/Value).
_PAIR_NAME_KEYS = ("name", "Name", "key", "Key", "ParameterKey", "ParameterName", "OptionName", "variable")
_PAIR_VALUE_KEYS = ("value", "Value", "ParameterValue", "OptionValue")


def _pair_secret_keys(node):
    """The value keys of ``node`` that hold a secret: a name/value pair whose name looks secret, or an
    SSM SecureString."""
    if node.get("Type") == "SecureString" or node.get("type") == "SecureString":
        return [k for k in _PAIR_VALUE_KEYS if k in node]
    for name_key in _PAIR_NAME_KEYS:
        name = node.get(name_key)
        if isinstance(name, str) and is_secret_key(name):
            return [k for k in _PAIR_VALUE_KEYS if k in node]
    return []


# an argv element naming a secret whose value is the next element: --password, {token:, "secret":
_ARG_FLAG = re.compile(r"""^[-{\s"']*([A-Za-z0-9_.\-]+?)["']?\s*[:=]?$""")


def _argv_flag_is_secret(item):
    flag = _ARG_FLAG.match(item) if isinstance(item, str) and len(item) <= 128 else None
    return bool(flag) and is_secret_key(flag.group(1))


def _leaf_strings(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if not _is_safe_key(k):
                _leaf_strings(v, out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _leaf_strings(v, out)
    elif isinstance(value, bytes):
        out.add(value.decode("utf-8", "replace"))
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        out.add(str(value))


def _usable(secret, min_length):
    return (
        len(secret) >= min_length
        and secret.strip().lower() not in _TRIVIAL_VALUES
        and secret != _NO_LOG_PLACEHOLDER
        and MASK not in secret
    )


def find_secrets(*values, min_length=MIN_SECRET_LENGTH):
    """Every secret value found in ``values`` (task arguments, results), longest first."""
    found = set()
    scanned = set()  # the same string (a user name, a status) repeats across a result: scan it once

    def walk(node, depth=0):
        if depth > 64:
            return
        if isinstance(node, dict):
            pair_keys = _pair_secret_keys(node)
            for k, v in node.items():
                if k in pair_keys or is_secret_key(k):
                    _leaf_strings(v, found)
                else:
                    walk(v, depth + 1)
        elif isinstance(node, (list, tuple, set, frozenset)):
            mask_next = False
            for v in node:
                if mask_next and isinstance(v, (str, bytes)):
                    _leaf_strings(v, found)
                else:
                    walk(v, depth + 1)
                mask_next = _argv_flag_is_secret(v)
        elif isinstance(node, (str, bytes)):
            text = node.decode("utf-8", "replace") if isinstance(node, bytes) else str.__str__(node)
            if text not in scanned:
                scanned.add(text)
                _find_in_text(text, found)

    for value in values:
        walk(value)
    # longest first so that a secret containing another is replaced whole
    return sorted((s for s in found if _usable(s, min_length)), key=len, reverse=True)


def collect_secrets(value, min_length=MIN_SECRET_LENGTH):
    """Every secret value found in ``value`` (kept for callers of the earlier name)."""
    return find_secrets(value, min_length=min_length)


def _plain_str(value):
    text = str.__str__(value) if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _mask_container(value, secrets, drop_internal, depth):
    """A secret-keyed dict or list (``credentials: {user, key}``): every leaf masked except those under
    keys that only name or describe the secret (AccessKeyId, Expiration, UserName)."""
    if depth > 64:
        return MASK
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _plain_str(k)
            if drop_internal and key.startswith("_ansible_"):
                continue
            if _is_safe_key(key):
                out[key] = to_plain(v, secrets, drop_internal, depth + 1)
            else:
                out[key] = _mask_container(v, secrets, drop_internal, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask_container(v, secrets, drop_internal, depth + 1) for v in value]
    if value is None or value == "" or isinstance(value, bool):
        return value
    return MASK


def to_plain(value, secrets=(), drop_internal=True, _depth=0):
    """A JSON-safe copy of ``value`` with secrets masked.

    * values under secret-looking keys become ``MASK`` (``None`` and ``""`` stay as they are; a dict or
      list under such a key keeps only its naming keys visible);
    * the value of a name/value pair whose name looks secret, and of an SSM SecureString, is masked;
    * a dict carrying ``_ansible_no_log: true`` is replaced by a censored marker;
    * ``_ansible_*`` keys are dropped (``drop_internal``);
    * strings have the ``secrets`` values and every secret shape masked;
    * anything else (datetimes, bytes, Ansible's tagged types) becomes plain JSON.
    """
    if _depth > 64:
        return "<nested too deep>"
    if isinstance(value, dict):
        if value.get("_ansible_no_log") is True:
            return dict(NO_LOG_DETAILS)
        pair_keys = _pair_secret_keys(value)
        out = {}
        for k, v in value.items():
            key = _plain_str(k)
            if drop_internal and key.startswith("_ansible_"):
                continue
            if (k in pair_keys or is_secret_key(key)) and v is not None and v != "" and not isinstance(v, bool):
                out[key] = (
                    _mask_container(v, secrets, drop_internal, _depth + 1)
                    if isinstance(v, (dict, list, tuple, set, frozenset))
                    else MASK
                )
            else:
                out[key] = to_plain(v, secrets, drop_internal, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        out = []
        mask_next = False
        for item in items:
            if mask_next and isinstance(item, (str, bytes, int, float)) and not isinstance(item, bool):
                out.append(MASK)
            else:
                out.append(to_plain(item, secrets, drop_internal, _depth + 1))
            # argv-style lists: ["--password", "x"], ["{token:", "x"]
            mask_next = _argv_flag_is_secret(item)
        return out
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return scrub_text(_plain_str(value), secrets)


def redact(value, extra_secrets=()):
    """Mask every secret in ``value``: the values of secret-looking keys wherever they appear,
    and the same values (plus every secret shape) inside free text."""
    secrets = find_secrets(value)
    extra = [s for s in extra_secrets or () if isinstance(s, str) and _usable(s, MIN_SECRET_LENGTH)]
    if extra:
        secrets = sorted(set(secrets) | set(extra), key=len, reverse=True)
    return to_plain(value, secrets)
