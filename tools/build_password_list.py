"""Build ``vault_core/data/common-passwords.txt.gz``, the list new passwords are checked against.

Sources (all offline, from the package registries; licences MIT/BSD):

* ``@zxcvbn-ts/language-common`` 4.x (npm): 49k passwords from breach corpora;
* ``zxcvbn`` 4.5 (PyPI): 30k passwords from the Xato corpus;
* Django 5.1 (PyPI): ``django/contrib/auth/common-passwords.txt.gz``, 20k passwords;
* ``@zxcvbn-ts/language-en`` 4.x (npm): common English words and Wikipedia's frequent words
  (NIST SP 800-63B counts dictionary words among the values to refuse).

Each source is a text file with one entry per line, given on the command line; the output is every
entry lower-cased, stripped, de-duplicated and sorted, one per line, gzip-compressed.

    python tools/build_password_list.py OUT.txt.gz SOURCE.txt [SOURCE.txt ...]
"""

from __future__ import annotations

import gzip
import sys


def build(out: str, sources: list[str]) -> int:
    entries: set[str] = set()
    for path in sources:
        with open(path, encoding="utf-8", errors="replace") as fh:
            entries.update(line.strip().lower() for line in fh if line.strip())
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as fh:
        fh.write("\n".join(sorted(entries)) + "\n")
    return len(entries)


if __name__ == "__main__":
    print(build(sys.argv[1], sys.argv[2:]), "entries")
